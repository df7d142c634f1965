internal import Foundation
internal import Logging
internal import NIOSSL
internal import Synchronization
internal import Testing
@testable internal import Transport

/// `ReloadingServerTLS` with a stand-in for building the TLS context: what matters is when it
/// builds one again and what it hands out when it cannot.
@Suite struct ReloadingTLSTests {
    struct Unloadable: Error {}
    final class Builds: Sendable {
        let count = Atomic(0)
    }

    /// A setup built from `path`: its text "bad" cannot be loaded (as a key that does not match).
    static func reloading(_ path: String, builds: Builds) throws -> ReloadingServerTLS {
        try ReloadingServerTLS(watching: [path], logger: Logger(label: "test")) {
            if try String(contentsOfFile: path, encoding: .utf8) == "bad" { throw Unloadable() }
            builds.count.add(1, ordering: .relaxed)
            return ServerTLSSetup(context: try NIOSSLContext(configuration: .makeClientConfiguration()), verification: nil)
        }
    }

    @Test func filesAreReadAgainOnlyWhenTheyChangeAndABadChangeKeepsThePreviousSetup() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString).pem").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "first".write(toFile: path, atomically: true, encoding: .utf8)
        let builds = Builds()
        let tls = try Self.reloading(path, builds: builds)
        let first = tls.current().context
        #expect(tls.current().context === first)
        #expect(builds.count.load(ordering: .relaxed) == 1)

        try "bad".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(tls.current().context === first)
        #expect(tls.current().context === first)  // not tried again until the files change again
        #expect(builds.count.load(ordering: .relaxed) == 1)

        try "second".write(toFile: path, atomically: true, encoding: .utf8)
        let second = tls.current().context
        #expect(second !== first)
        #expect(tls.current().context === second)
        #expect(builds.count.load(ordering: .relaxed) == 2)
    }

    @Test func connectionsArrivingDuringAReloadKeepThePreviousSetupAndOnlyOneBuilds() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString).pem").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "first".write(toFile: path, atomically: true, encoding: .utf8)
        let builds = Builds()
        let connections = 6
        let handedOutFirst = Atomic(0)
        let tls = try ReloadingServerTLS(watching: [path], logger: Logger(label: "test")) {
            // A build after the first lasts until the other connections were served (or 5 s).
            if builds.count.add(1, ordering: .relaxed).newValue > 1 {
                let deadline = Date().addingTimeInterval(5)
                while handedOutFirst.load(ordering: .relaxed) < connections - 1, Date() < deadline {
                    Thread.sleep(forTimeInterval: 0.01)
                }
            }
            return ServerTLSSetup(context: try NIOSSLContext(configuration: .makeClientConfiguration()), verification: nil)
        }
        let first = tls.current().context
        try "second".write(toFile: path, atomically: true, encoding: .utf8)
        let done = DispatchGroup()
        for _ in 0..<connections {
            done.enter()
            Thread.detachNewThread {
                if tls.current().context === first { handedOutFirst.add(1, ordering: .relaxed) }
                done.leave()
            }
        }
        done.wait()
        #expect(builds.count.load(ordering: .relaxed) == 2)
        #expect(handedOutFirst.load(ordering: .relaxed) == connections - 1)
        #expect(tls.current().context !== first)
        #expect(builds.count.load(ordering: .relaxed) == 2)
    }

    @Test func filesThatCannotBeLoadedAtStartFailTheStart() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString).pem").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "bad".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: Unloadable.self) { try Self.reloading(path, builds: Builds()) }
    }
}
