// The command of `watch ... -- COMMAND ARGS`, run once per event as etcdctl's printWatchCh does: stdout and
// stderr shared with kvctl, the event in ETCD_WATCH_* variables (Go-quoted as etcdctl's %q writes them), and a
// failing command ending kvctl with exit 1.

import EtcdAPI
import Foundation

enum EventCommand {
    static func run(_ command: [String], for event: Mvccpb_Event, revision: Int64) {
        var environment = ProcessInfo.processInfo.environment
        environment["ETCD_WATCH_REVISION"] = String(revision)
        environment["ETCD_WATCH_EVENT_TYPE"] = GoFormat.quote(event.type == .delete ? "DELETE" : "PUT")
        environment["ETCD_WATCH_KEY"] = GoFormat.quote(Array(event.kv.key))
        environment["ETCD_WATCH_VALUE"] = GoFormat.quote(Array(event.kv.value))
        if let failure = runToEnd(command, environment: environment) {
            let quoted = command.map(GoFormat.quote).joined(separator: " ")
            Console.err("command [\(quoted)] error (\(failure))\n")
            exit(1)
        }
    }

    /// Runs `command` and waits for it; nil on exit status 0, else Go's text for the failure.
    static func runToEnd(_ command: [String], environment: [String: String]) -> String? {
        guard let path = lookPath(command[0], in: environment["PATH"] ?? "") else {
            return "exec: \(GoFormat.quote(command[0])): executable file not found in $PATH"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        do {
            try process.run()
        } catch {
            return "fork/exec \(path): \(error.localizedDescription)"
        }
        process.waitUntilExit()
        switch process.terminationReason {
        case .exit where process.terminationStatus == 0: return nil
        case .exit: return "exit status \(process.terminationStatus)"
        case .uncaughtSignal: return "signal: \(signalName(process.terminationStatus))"
        @unknown default: return "exit status \(process.terminationStatus)"
        }
    }

    /// Go's exec.LookPath: a name with a slash is used as it is, others are searched for in PATH.
    private static func lookPath(_ name: String, in path: String) -> String? {
        if name.contains("/") { return name }
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Go's names of the signals a command commonly dies of.
    private static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGHUP: return "hangup"
        case SIGINT: return "interrupt"
        case SIGQUIT: return "quit"
        case SIGABRT: return "aborted"
        case SIGKILL: return "killed"
        case SIGSEGV: return "segmentation fault"
        case SIGPIPE: return "broken pipe"
        case SIGTERM: return "terminated"
        default: return "signal \(signal)"
        }
    }
}
