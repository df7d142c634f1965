internal import ArgumentParser
internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import Server
internal import Transport

/// `kvd gateway start`: etcd's gateway, a TCP proxy in front of a cluster's client endpoints
/// (`TCPProxy`), with etcd's flags. etcd takes the flags before or after `start`; so does kvd.
struct GatewayStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvd gateway start",
        abstract: "Start the gateway: a TCP proxy to the cluster's client endpoints."
    )

    @Option(name: .customLong("listen-addr"), help: "Listen address.")
    var listenAddress = "127.0.0.1:23790"

    @Option(help: "Comma-separated etcd cluster endpoints.")
    var endpoints = "127.0.0.1:2379"

    @Option(name: .customLong("retry-delay"), help: "Duration of delay before retrying failed endpoints.")
    var retryDelay = "1m"

    @Option(name: .customLong("discovery-srv"), help: "DNS domain used to bootstrap the initial cluster (not supported by kvd).")
    var discoverySRV = ""

    @Option(name: .customLong("discovery-srv-name"), help: "Service name to query with DNS discovery (not supported by kvd).")
    var discoverySRVName = ""

    @Flag(name: .customLong("insecure-discovery"), help: "Accept insecure SRV records (not supported by kvd).")
    var insecureDiscovery = false

    @Option(name: .customLong("trusted-ca-file"), help: "CA for the endpoints found by DNS discovery (not supported by kvd).")
    var trustedCAFile = ""

    /// Runs `kvd gateway ARGUMENTS` (the arguments after `gateway`).
    static func main(gatewayArguments arguments: [String]) async {
        var arguments = arguments
        guard let start = arguments.firstIndex(of: "start") else {
            print("""
                Usage:
                  kvd gateway <subcommand> [flags]

                Available Commands:
                  start       start the gateway
                """)
            return
        }
        arguments.remove(at: start)
        do {
            try await parseAndRun(arguments)
        } catch {
            exit(withError: error)
        }
    }

    /// `host:port` or a URL whose scheme is dropped, as etcd's gateway takes an endpoint.
    static func endpoint(_ text: String) throws -> TCPProxy.Endpoint {
        var address = Substring(text.trimmingCharacters(in: .whitespaces))
        if let scheme = address.range(of: "://") { address = address[scheme.upperBound...] }
        if let path = address.firstIndex(of: "/") { address = address[..<path] }
        // host:port as a member's URLs take it (IPv6 in brackets).
        guard let url = try? MemberURL(parsing: "http://\(address)") else { throw ValidationError("error parsing endpoint \"\(text)\"") }
        return TCPProxy.Endpoint(host: url.host, port: url.port)
    }

    func run() async throws {
        guard discoverySRV.isEmpty else { throw ValidationError("gateway --discovery-srv is not supported by kvd yet; give --endpoints") }
        let endpoints: [TCPProxy.Endpoint]
        do {
            endpoints = try self.endpoints.split(separator: ",").map { try Self.endpoint(String($0)) }
        } catch {
            print(error)  // etcd prints this and exits with status 1
            throw ExitCode(1)
        }
        guard !endpoints.isEmpty else {
            print("no endpoints found")
            throw ExitCode(1)
        }
        let listen: TCPProxy.Endpoint
        do {
            listen = try Self.endpoint(listenAddress)
        } catch {
            throw ValidationError("failed to validate listen address: \(listenAddress)")
        }
        // As etcd: an endpoint that is the gateway's own address would proxy to itself.
        if let loop = endpoints.first(where: { $0 == listen }) {
            // etcd prints this and exits with status 1, not as a usage error.
            print("SRV or endpoint (\(loop)->\(loop)) should not resolve to the gateway listen addr (\(listenAddress))")
            throw ExitCode(1)
        }
        // etcd's proxy takes a zero delay as its own default, five minutes.
        let delay = MemberSettings.isOff(retryDelay) ? Duration.seconds(300) : .milliseconds(try MemberSettings.milliseconds(retryDelay))
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "kvd-gateway")
        let proxy = TCPProxy(endpoints: endpoints, retryDelay: delay, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let listener = try await proxy.listen(host: listen.host, port: listen.port)
        logger.info("ready to proxy client requests", metadata: ["endpoints": "\(endpoints.map(\.description))"])
        // Until SIGTERM or SIGINT: the listener closes then, and the connections being proxied
        // with the process.
        let signal = await KVD.terminationSignal()
        logger.info("received signal, shutting down", metadata: ["signal": "\(signal)"])
        try? await listener.close()
    }
}
