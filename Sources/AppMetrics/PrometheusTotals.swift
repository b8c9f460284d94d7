import Metrics
import Prometheus
import Synchronization

/// swift-metrics instruments that mirror totals a data plane keeps itself, exported in Prometheus' text format.
/// The data path only counts into its own statistics; an export samples them and moves each counter by what
/// changed since the last export, so no packet pays for a metric.
public final class PrometheusTotals<Sample: Sendable>: Sendable {
    /// One value the app counts: its Prometheus name, and how to read it from a sample.
    public struct Metric: Sendable {
        let name: String
        let dimensions: [(String, String)]
        let isGauge: Bool
        let read: @Sendable (Sample) -> Int

        /// A total that only grows; its Prometheus name gets `_total`.
        public static func total(_ name: String, dimensions: [(String, String)] = [],
                                 _ read: @escaping @Sendable (Sample) -> Int) -> Metric {
            Metric(name: name + "_total", dimensions: dimensions, isGauge: false, read: read)
        }

        /// A value that goes up and down.
        public static func gauge(_ name: String, _ read: @escaping @Sendable (Sample) -> Int) -> Metric {
            Metric(name: name, dimensions: [], isGauge: true, read: read)
        }
    }

    private enum Instrument: Sendable {
        case counter(Metrics.Counter)
        case gauge(Metrics.Gauge)
    }

    private let registry = PrometheusCollectorRegistry()
    private let metrics: [Metric]
    private let instruments: [Instrument]
    private let previous = Mutex<[Int]>([])

    /// Makes the instruments, each named `prefix` + its name, and points swift-metrics at their registry (once
    /// per process).
    public init(prefix: String, _ metrics: [Metric]) {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        self.metrics = metrics
        instruments = metrics.map { metric in
            let label = prefix + metric.name
            return metric.isGauge ? .gauge(Metrics.Gauge(label: label)) : .counter(Metrics.Counter(label: label, dimensions: metric.dimensions))
        }
    }

    /// The exposition text after moving every instrument to `sample`.
    public func render(_ sample: Sample) -> String {
        previous.withLock { previous in
            let values = metrics.map { $0.read(sample) }
            for (index, instrument) in instruments.enumerated() {
                switch instrument {
                case .gauge(let gauge):
                    gauge.record(values[index])
                case .counter(let counter):
                    let delta = values[index] - (index < previous.count ? previous[index] : 0)
                    if delta > 0 { counter.increment(by: delta) }
                }
            }
            previous = values
        }
        return registry.emitToString()
    }
}
