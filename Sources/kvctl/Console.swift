// Process output and exit, byte-exact: keys and values are arbitrary bytes, so everything is written as bytes.

import Foundation

/// Writes to the process's standard output and error streams without buffering, so that the interleaving of the
/// two matches etcdctl's (it writes each line as it goes).
enum Console {
    static func out(_ text: String) { write(1, Array(text.utf8)) }
    static func out(bytes: [UInt8]) { write(1, bytes) }
    static func err(_ text: String) { write(2, Array(text.utf8)) }

    private static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return  // a closed pipe: nothing useful can be done with the rest (etcdctl ignores it too)
            }
            offset += written
        }
    }
}

/// etcdctl's exit codes (etcdctl/ctlv3/command/error.go).
enum ExitCode: Int32 {
    case success = 0
    case error = 1
    case badConnection = 2
    case invalidInput = 3
    case badFeature = 4
    case interrupted = 5
    case io = 6
    case badArgs = 128
}

/// A failure that ends the command the way etcdctl's `ExitWithError` does: "Error: <message>" on stderr.
struct CommandExit: Error {
    var code: ExitCode
    var message: String

    init(_ code: ExitCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Ends the process like etcdctl's `ExitWithError`.
func exitWithError(_ code: ExitCode, _ message: String) -> Never {
    Console.err("Error: \(message)\n")
    exit(code.rawValue)
}

/// Ends the process like a Go panic does (message, then exit status 2); etcdctl panics on some txn inputs.
func goPanic(_ message: String) -> Never {
    Console.err("panic: \(message)\n\ngoroutine 1 [running]:\n")
    exit(2)
}
