// The summary of a run, computed and printed as etcd 3.4's `pkg/report` does, so that one parser reads both tools.

internal import Foundation

struct Summary {
    /// Latencies of the successful requests, in seconds, sorted.
    let latencies: [Double]
    /// Failed requests by error message.
    let errors: [String: Int]
    /// Wall time of the whole run, in seconds.
    let total: Double

    let average: Double
    let stddev: Double
    let requestsPerSecond: Double

    /// etcd's percentile points.
    static let percentilePoints: [Double] = [10, 25, 50, 75, 90, 95, 99, 99.9]

    init(latencies: [Double], errors: [String: Int], total: Double) {
        self.latencies = latencies.sorted()
        self.errors = errors
        self.total = total
        let count = Double(latencies.count)
        average = latencies.isEmpty ? 0 : latencies.reduce(0, +) / count
        let mean = average
        stddev = latencies.isEmpty ? 0 : (latencies.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / count).squareRoot()
        requestsPerSecond = total > 0 ? count / total : 0
    }

    /// etcd's rule: the first sample at or above each percentile point of the sorted samples.
    var percentiles: [Double] {
        var data = [Double](repeating: 0, count: Self.percentilePoints.count)
        var point = 0
        let count = latencies.count
        var index = 0
        while index < count, point < Self.percentilePoints.count {
            let current = Double(index) * 100.0 / Double(count)
            if current >= Self.percentilePoints[point] {
                data[point] = latencies[index]
                point += 1
            }
            index += 1
        }
        return data
    }

    func render(precise: Bool) -> String {
        let format = { (value: Double) -> String in precise ? "\(value)" : String(format: "%4.4f", value) }
        var text = ""
        if let fastest = latencies.first, let slowest = latencies.last {
            text += "\nSummary:\n"
            text += "  Total:\t\(format(total)) secs.\n"
            text += "  Slowest:\t\(format(slowest)) secs.\n"
            text += "  Fastest:\t\(format(fastest)) secs.\n"
            text += "  Average:\t\(format(average)) secs.\n"
            text += "  Stddev:\t\(format(stddev)) secs.\n"
            text += "  Requests/sec:\t\(format(requestsPerSecond))\n"
            text += histogram(fastest: fastest, slowest: slowest, format: format)
            text += "\nLatency distribution:\n"
            for (point, value) in zip(Self.percentilePoints, percentiles) where value > 0 {
                let label = point == point.rounded() ? String(Int(point)) : String(point)
                text += "  \(label)% in \(format(value)) secs.\n"
            }
        }
        if !errors.isEmpty {
            text += "\nError distribution:\n"
            for (message, count) in errors.sorted(by: { $0.value > $1.value }) {
                text += "  [\(count)]\t\(message)\n"
            }
        }
        return text
    }

    private func histogram(fastest: Double, slowest: Double, format: (Double) -> String) -> String {
        let bucketCount = 10
        let width = (slowest - fastest) / Double(bucketCount)
        var buckets = (0..<bucketCount).map { fastest + width * Double($0) }
        buckets.append(slowest)
        var counts = [Int](repeating: 0, count: buckets.count)
        var bucket = 0
        var index = 0
        while index < latencies.count {
            if latencies[index] <= buckets[bucket] {
                counts[bucket] += 1
                index += 1
            } else if bucket < buckets.count - 1 {
                bucket += 1
            } else {
                break
            }
        }
        let largest = counts.max() ?? 0
        var text = "\nResponse time histogram:\n"
        for (edge, count) in zip(buckets, counts) {
            let bar = largest > 0 ? String(repeating: "∎", count: count * 40 / largest) : ""
            text += "  \(format(edge)) [\(count)]\t|\(bar)\n"
        }
        return text
    }
}
