// Data-driven interaction tests: each `testdata/*.txt` file is a script of commands, each followed by `----`
// and the exact expected output (the etcd-io/raft `interaction_test.go` style). `RAFT_REWRITE=1` regenerates
// the expected outputs; commit the change only if you understand the diff.
//
// Commands: add-nodes voters=1,2,3 [learners=4] [prevote=false] [checkquorum=false] | campaign <id> |
// propose <id> <text> | propose-conf-change <id> add-voter|add-learner|promote|remove <node> | tick <id> [n] |
// tick-all [n] | stabilize | isolate <id>... | heal | crash <id> | restart <id> | transfer-leader <from> <to> |
// read-index <id> <context> | compact <id> | status

import Foundation
import Testing
@testable import Raft

struct ScriptRunner {
    var cluster: TestCluster?

    mutating func run(_ line: String) -> String {
        let words = line.split(separator: " ").map(String.init)
        guard let command = words.first else { return "" }
        let arguments = Array(words.dropFirst())
        func id(_ position: Int) -> NodeID { NodeID(UInt64(arguments[position])!) }
        switch command {
        case "add-nodes":
            var options: [String: String] = [:]
            for argument in arguments {
                let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
                options[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            func ids(_ key: String) -> [NodeID] {
                (options[key] ?? "").split(separator: ",").compactMap { UInt64($0) }.map { NodeID($0) }
            }
            let preVote = options["prevote"] != "false"
            let checkQuorum = options["checkquorum"] != "false"
            cluster = TestCluster(voters: ids("voters"), learners: ids("learners")) {
                $0.preVote = preVote
                $0.checkQuorum = checkQuorum
            }
            return "ok"
        case "campaign":
            cluster!.campaign(id(0))
            return "ok"
        case "propose":
            do {
                try cluster!.propose(id(0), arguments.dropFirst().joined(separator: " "))
                return "ok"
            } catch {
                return "dropped: \(error)"
            }
        case "propose-conf-change":
            let target = id(2)
            let change: ConfChange
            switch arguments[1] {
            case "add-voter": change = .addVoter(target)
            case "add-learner": change = .addLearner(target)
            case "promote": change = .promote(target)
            default: change = .remove(target)
            }
            do {
                try cluster!.nodes[id(0)]!.proposeConfChange(change)
                // A member being added starts empty and learns everything from the leader.
                if cluster!.storages[target] == nil { cluster!.start(target) }
                cluster!.processReady(id(0))
                return "ok"
            } catch {
                return "dropped: \(error)"
            }
        case "tick":
            cluster!.tick(id(0), times: arguments.count > 1 ? Int(arguments[1])! : 1)
            return "ok"
        case "tick-all":
            cluster!.tickAll(times: arguments.isEmpty ? 1 : Int(arguments[0])!)
            return "ok"
        case "stabilize":
            cluster!.stabilize()
            return "ok"
        case "isolate":
            cluster!.isolate(Set(arguments.indices.map(id)))
            return "ok"
        case "heal":
            cluster!.heal()
            return "ok"
        case "crash":
            cluster!.crash(id(0))
            return "ok"
        case "restart":
            cluster!.start(id(0))
            return "ok"
        case "transfer-leader":
            cluster!.nodes[id(0)]!.transferLeader(to: id(1))
            cluster!.processReady(id(0))
            return "ok"
        case "read-index":
            do {
                try cluster!.nodes[id(0)]!.readIndex(context: Array(arguments[1].utf8))
                cluster!.processReady(id(0))
                return "ok"
            } catch {
                return "dropped: \(error)"
            }
        case "compact":
            let storage = cluster!.storages[id(0)]!
            // The test compacts at the applied index, which is always in the log.
            try? storage.createSnapshot(at: cluster!.applied[id(0)]!, confState: storage.confState, data: [])
            return "ok"
        case "status":
            return status()
        default:
            return "unknown command \(command)"
        }
    }

    func status() -> String {
        guard let cluster else { return "no cluster" }
        var lines: [String] = []
        for id in cluster.storages.keys.sorted() {
            guard let node = cluster.nodes[id] else {
                lines.append("\(id): down")
                continue
            }
            let confState = node.confState
            let reads = (cluster.readStates[id] ?? []).map { "\(String(decoding: $0.requestContext, as: UTF8.self))@\($0.index)" }
            lines.append("\(id): \(node.role) term=\(node.term) lead=\(node.leader) commit=\(node.commitIndex) "
                + "applied=\(node.appliedIndex) last=\(node.lastIndex) "
                + "voters=\(confState.voters.map(\.description).joined(separator: ",")) "
                + "learners=\(confState.learners.map(\.description).joined(separator: ","))")
            lines.append("   data=[\(cluster.appliedTexts(id).joined(separator: " "))] reads=[\(reads.joined(separator: " "))]"
                + " snapshots=\(cluster.snapshotsInstalled[id] ?? 0)")
        }
        if !cluster.violations.isEmpty { lines.append("VIOLATIONS: \(cluster.violations)") }
        return lines.joined(separator: "\n")
    }
}

enum TestData {
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testdata")
    }

    static var files: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".txt") }.sorted()
    }

    /// Runs a script; returns the file rewritten with actual outputs, and the mismatches.
    static func run(_ text: String) -> (rewritten: String, mismatches: [String]) {
        var runner = ScriptRunner()
        var output: [String] = []
        var mismatches: [String] = []
        let lines = text.components(separatedBy: "\n")
        var position = 0
        while position < lines.count {
            let line = lines[position]
            position += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") {
                output.append(line)
                continue
            }
            output.append(line)
            // Expected output: after `----`, up to the next blank line.
            var expected: [String] = []
            if position < lines.count && lines[position] == "----" {
                position += 1
                while position < lines.count && !lines[position].isEmpty {
                    expected.append(lines[position])
                    position += 1
                }
            }
            let actual = runner.run(line)
            output.append("----")
            output.append(actual)
            if expected.joined(separator: "\n") != actual {
                mismatches.append("\(line)\nexpected:\n\(expected.joined(separator: "\n"))\nactual:\n\(actual)")
            }
        }
        return (output.joined(separator: "\n"), mismatches)
    }
}

@Suite("Data-driven")
struct DataDrivenTests {
    @Test("testdata scripts produce their recorded output")
    func scripts() throws {
        let files = TestData.files
        #expect(!files.isEmpty, "no testdata found at \(TestData.directory.path)")
        let rewrite = ProcessInfo.processInfo.environment["RAFT_REWRITE"] != nil
        for file in files {
            let url = TestData.directory.appendingPathComponent(file)
            let text = try String(contentsOf: url, encoding: .utf8)
            let (rewritten, mismatches) = TestData.run(text)
            if rewrite {
                try rewritten.write(to: url, atomically: true, encoding: .utf8)
            } else {
                #expect(mismatches.isEmpty, "\(file):\n\(mismatches.joined(separator: "\n\n"))")
            }
        }
    }
}
