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

    @Option(name: .customLong("discovery-srv"), help: "DNS domain used to bootstrap initial cluster.")
    var discoverySRV = ""

    @Option(name: .customLong("discovery-srv-name"), help: "Service name to query when using DNS discovery.")
    var discoverySRVName = ""

    @Flag(name: .customLong("insecure-discovery"), help: "Accept insecure SRV records.")
    var insecureDiscovery = false

    @Option(name: .customLong("trusted-ca-file"), help: "Path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.")
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
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "kvd-gateway")
        // The endpoints DNS discovery finds, if any; else --endpoints.
        var texts = self.endpoints.split(separator: ",").map(String.init)
        if !discoverySRV.isEmpty {
            let discovered = try await discoveredEndpoints(logger)
            if !discovered.isEmpty { texts = discovered }
        }
        let endpoints: [TCPProxy.Endpoint]
        do {
            endpoints = try texts.map { try Self.endpoint($0) }
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
        let proxy = TCPProxy(endpoints: endpoints, retryDelay: delay, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let listener = try await proxy.listen(host: listen.host, port: listen.port)
        logger.info("ready to proxy client requests", metadata: ["endpoints": "\(endpoints.map(\.description))"])
        // Until SIGTERM or SIGINT: the listener closes then, and the connections being proxied
        // with the process.
        let signal = await KVD.terminationSignal()
        logger.info("received signal, shutting down", metadata: ["signal": "\(signal)"])
        try? await listener.close()
    }

    /// The client endpoints of `--discovery-srv`, as etcd's gateway takes them: a failed lookup
    /// ends the process; without `--insecure-discovery` only the https endpoints that accept a TCP
    /// connection within 5 s are kept (etcd checks no more than that: TLS is left to the clients).
    private func discoveredEndpoints(_ logger: Logger) async throws -> [String] {
        let endpoints: [String]
        do {
            endpoints = try DNSDiscovery.clientEndpoints(domain: discoverySRV, serviceName: discoverySRVName)
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.info("discovered cluster from SRV", metadata: ["srv-server": "\(discoverySRV)", "endpoints": "\(endpoints)"])
        guard !insecureDiscovery else { return endpoints }
        logger.info("validating discovered SRV endpoints", metadata: ["srv-server": "\(discoverySRV)", "endpoints": "\(endpoints)"])
        var valid: [String] = []
        var failures: [String] = []
        for text in endpoints {
            guard text.hasPrefix("https://"), let endpoint = try? Self.endpoint(text) else {
                failures.append("\"\(text)\" is insecure")
                continue
            }
            do {
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(5))
                    .connect(host: endpoint.host, port: endpoint.port).get()
                try? await channel.close()
                valid.append(text)
            } catch {
                failures.append("\"\(text)\" failed to dial (\(error))")
            }
        }
        if !failures.isEmpty {
            logger.warning("failed to validate discovered endpoints", metadata: [
                "srv-server": "\(discoverySRV)", "endpoints": "\(endpoints)", "error": "\(failures.joined(separator: ","))",
            ])
        }
        return valid
    }
}
