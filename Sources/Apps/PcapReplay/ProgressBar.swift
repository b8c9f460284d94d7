#if canImport(Glibc)
import Glibc
#endif

/// A progress bar on standard error, shown only on a terminal and only once the work has taken a second.
struct ProgressBar {
    let total: Int64
    private let start = ContinuousClock.now
    private let enabled = isatty(STDERR_FILENO) == 1
    private var shown = false

    init(total: Int64) {
        self.total = total
    }

    mutating func update(done: Int64) {
        guard enabled, total > 0, ContinuousClock.now - start > .seconds(1) else { return }
        shown = true
        let fraction = min(1, Double(done) / Double(total))
        let width = 40, filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        printRaw("\r[\(bar)] \(Int(fraction * 100))% \(done / 1_048_576)/\(total / 1_048_576) MiB")
    }

    func finish() {
        guard shown else { return }
        printRaw("\n")
    }

    private func printRaw(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }
}
