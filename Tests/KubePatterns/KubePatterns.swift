// KubePatterns: the storage patterns of kube-apiserver's etcd3 store (k8s.io/apiserver/pkg/storage/
// etcd3: store.go, watcher.go, compact.go, lease_manager.go), each step checked, against a
// three-member mTLS cluster. Run by Tests/Cluster/kube-patterns.sh, which kills one member with
// kill -9 and restarts it during the churn phase; the program keeps going through the other
// members, as kube-apiserver does over its --etcd-servers.
//
//   KubePatterns --endpoints https://127.0.0.1:A,https://127.0.0.1:B,https://127.0.0.1:C \
//       --cacert ca.crt --cert apiserver-etcd-client.crt --key apiserver-etcd-client.key \
//       [--phases before,churn,after] [--await-restart 0] [--churn-seconds 6] [--min-version 3.5.13]
//
// Prints one "ok   - ..." or "FAIL - ..." line per check ("# ..." lines are notes; the suite waits
// for "# churn: started" before it kills a member) and exits 1 if any check failed.

internal import ArgumentParser
internal import Foundation

@main
struct KubePatterns: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "KubePatterns",
        abstract: "kube-apiserver's etcd storage patterns against an etcd-compatible cluster, every step checked."
    )

    @Option(help: "Client URLs of the members, comma-separated (https://host:port).")
    var endpoints: String

    @Option(help: "CA bundle that signed the members' certificates.")
    var cacert: String

    @Option(help: "Client certificate (kube-apiserver's apiserver-etcd-client.crt).")
    var cert: String

    @Option(help: "Client key.")
    var key: String

    @Option(
        help:
            "Phases to run, comma-separated: before (status, create, delete, lists, progress, compaction), churn, after."
    )
    var phases: String = "before,churn,after"

    @Option(
        help:
            "Index (0-based) of the endpoint that is killed and restarted during churn; churn waits to see it come back."
    )
    var awaitRestart: Int?

    @Option(help: "Minimum duration of the churn phase, in seconds.")
    var churnSeconds: Int = 6

    @Option(help: "Concurrent optimistic updaters on one key during churn.")
    var updaters: Int = 4

    @Option(help: "Events written with one shared lease during churn (kube-apiserver attaches up to 1000 per lease).")
    var events: Int = 1000

    @Option(help: "Lowest version Status must report ('none': only record it, as for etcd 3.4).")
    var minVersion: String = "3.5.13"

    @Flag(
        help:
            "The members run with a short --experimental-watch-progress-notify-interval: expect periodic notifications."
    )
    var expectProgressNotify = false

    func validate() throws {
        guard parsedEndpoints.count == endpoints.split(separator: ",").count, !parsedEndpoints.isEmpty else {
            throw ValidationError("--endpoints: expected host:port or https://host:port, comma-separated")
        }
        if let awaitRestart, !parsedEndpoints.indices.contains(awaitRestart) {
            throw ValidationError("--await-restart \(awaitRestart) is not an endpoint index")
        }
        let unknown = Set(selectedPhases).subtracting(["before", "churn", "after"])
        guard unknown.isEmpty else { throw ValidationError("unknown phases \(unknown.sorted())") }
    }

    private var parsedEndpoints: [Endpoint] { endpoints.split(separator: ",").compactMap { Endpoint(String($0)) } }
    private var selectedPhases: [String] { phases.split(separator: ",").map(String.init) }

    func run() async throws {
        let report = Report()
        let cluster = try Cluster(
            endpoints: parsedEndpoints, tls: TLSFiles(caFile: cacert, certificateFile: cert, keyFile: key))
        let runID = String(UInt32.random(in: .min ... .max), radix: 16)
        let scenario = Scenario(
            cluster: cluster, report: report, prefix: "/registry-kp-\(runID)",
            minimumVersion: minVersion == "none" ? nil : minVersion.split(separator: ".").map { Int($0) ?? 0 })
        let phases = selectedPhases
        let churn = ChurnSettings(
            minimumDuration: .seconds(churnSeconds), awaitRestart: awaitRestart, updaters: updaters, events: events,
            expectProgressNotify: expectProgressNotify)
        report.note("prefix \(scenario.prefix), endpoints \(cluster.endpoints)")
        try await cluster.run {
            if phases.contains("before") {
                await scenario.status()
                await scenario.everyMemberServes("before", patience: .seconds(10))
                await scenario.createAndConflict()
                await scenario.deleteWithPrecondition()
                await scenario.paginatedLists()
                // Before compaction: it watches from 60 revisions back.
                await scenario.progressOrdering()
                await scenario.progressOnQuietRange()
                let compacted = await scenario.compaction(label: "compaction")
                await scenario.compactedReads(compacted: compacted)
            }
            if phases.contains("churn") {
                await scenario.churn(churn)
            }
            if phases.contains("after") {
                await scenario.everyMemberServes("after", patience: .seconds(30))
                await scenario.status()
                await scenario.compaction(label: "compaction after churn")
            }
        }
        Report.write("# \(report.passed) passed, \(report.failed) failed")
        if report.failed > 0 { throw ExitCode(1) }
    }
}
