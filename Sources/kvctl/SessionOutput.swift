// Calls and output for the commands whose results the `Printer` protocol does not cover (watch, lease, alarm,
// snapshot status): they render bytes per `OutputStyle`, and failures take each command's own etcdctl wording.

import KVClient

extension Session {
    /// Runs one call; a failure ends the process as the command does in etcdctl: `Error: <prefix> (<error>)` or
    /// `Error: <error>`, with `code`. `warn` adds clientv3's retry warning, which only unary calls log.
    func callOrExit<Response: Sendable>(
        timeout: Duration?, prefix: String? = nil, code: ExitCode = .error, warn: Bool = true,
        _ body: @escaping @Sendable (EtcdClient, Duration?) async throws -> Response
    ) async -> Response {
        switch await Self.attempt(configuration, timeout: timeout, body) {
        case .success(let response):
            return response
        case .failure(.call(let error)):
            if warn { Console.err(EtcdErrors.retryWarning(error, firstEndpoint: firstEndpoint)) }
            let message = EtcdErrors.message(for: error)
            exitWithError(code, prefix.map { "\($0) (\(message))" } ?? message)
        case .failure(.authentication(let error)):
            failAuthentication(error)
        case .failure(.setup(let text)):
            exitWithError(.badConnection, text)
        }
    }

    /// The session's output format and `--hex`.
    var style: OutputStyle { OutputStyle(outputFormat, isHex: isHex) }

    /// Writes what `render` makes of the result in the session's format; a format the result has no output for
    /// ends the process as etcdctl's printer does.
    func write(_ render: (OutputStyle) throws(CommandExit) -> [UInt8]) {
        do {
            Console.out(bytes: try render(style))
        } catch {
            exitWithError(error.code, error.message)
        }
    }
}
