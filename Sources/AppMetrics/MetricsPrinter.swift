import Foundation

/// `--metrics stdout`: the exposition text on standard output every `interval`, and once more when the task
/// is cancelled (at shutdown), so a short run still reports what it counted.
public enum MetricsPrinter {
    /// OpenTelemetry's periodic reader exports every 60 s by default.
    public static let defaultInterval = Duration.seconds(60)

    public static func run(every interval: Duration = defaultInterval, render: @Sendable () async -> String) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let text = await render()
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
