// `make-mirror` (etcdctl make_mirror_command.go over clientv3's mirror.Syncer): copies the keys under --prefix
// as of one revision to the destination cluster in pages of 1,000, then replays every later change, one
// destination txn per source revision, until killed; prints the number of keys and events mirrored every 30 s.

import EtcdAPI
import Foundation
import KVClient
import SwiftProtobuf
import Synchronization

enum MakeMirrorCommand {
    static let flags = [
        FlagSpec(name: "prefix", kind: .string, defaultValue: ""),
        FlagSpec(name: "dest-prefix", kind: .string, defaultValue: ""),
        FlagSpec(name: "no-dest-prefix", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "dest-cert", kind: .string, defaultValue: ""),
        FlagSpec(name: "dest-key", kind: .string, defaultValue: ""),
        FlagSpec(name: "dest-cacert", kind: .string, defaultValue: ""),
        FlagSpec(name: "dest-insecure-transport", kind: .bool, defaultValue: "true"),
    ]
    /// clientv3 mirror's page size.
    static let pageSize: Int64 = 1_000

    static func run(_ flags: ParsedFlags) async {
        guard flags.positional.count == 1 else { exitWithError(.badArgs, "make-mirror takes one destination argument") }
        guard let endpoint = EtcdEndpoint(parsing: flags.positional[0]) else {
            exitWithError(.badConnection, "kvctl: cannot parse endpoint \(GoFormat.quote(flags.positional[0]))")
        }
        let destinationTLS = Session.tlsSettings(
            cert: flags.string("dest-cert"), key: flags.string("dest-key"), cacert: flags.string("dest-cacert"),
            skipVerify: false)
        let session = Session.make(flags)
        let destination = EtcdClientConfiguration(
            endpoints: [endpoint], tls: destinationTLS, dialTimeout: session.configuration.dialTimeout)
        let prefix = flags.string("prefix")
        let total = Counter()
        Task {
            while true {
                try await Task.sleep(for: .seconds(30))
                Console.out("\(total.value.load(ordering: .relaxed))\n")
            }
        }
        // The revision the copy is taken at, as the syncer reads it (a Get of "foo").
        let revision = await session.call(timeout: nil) { client, _ in
            try await client.range(.with { $0.key = Data("foo".utf8) }).header.revision
        }
        if flags.bool("no-dest-prefix") && !flags.string("dest-prefix").isEmpty {
            exitWithError(.badArgs, "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one")
        }
        let destinationPrefix = flags.bool("no-dest-prefix") || !flags.string("dest-prefix").isEmpty
            ? flags.string("dest-prefix") : prefix
        let rename = { @Sendable (key: Data) -> Data in Self.replacingFirst(prefix, with: destinationPrefix, in: key) }
        // clientv3's WithPrefix: an empty prefix is every key.
        let keys = KeyRanges.resolve(key: prefix, rangeEnd: nil, prefix: true, fromKey: false)
        let source = session.configuration
        let failure = await Session.attempt(source, timeout: nil) { client, _ in
            try await EtcdClient.withClient(configuration: destination) { mirror in
                try await copyBase(from: client, to: mirror, keys: keys, revision: revision, rename: rename, total: total)
                try await replayUpdates(from: client, to: mirror, keys: keys, after: revision, rename: rename, total: total)
            }
        }
        switch failure {
        case .success: exitWithError(.error, "watch closed")
        case .failure(.call(let error)): exitWithError(.error, EtcdErrors.message(for: error))
        case .failure(.authentication(let error)): exitWithError(.badConnection, EtcdErrors.message(for: error))
        case .failure(.setup(let text)): exitWithError(.badConnection, text)
        }
    }

    /// The keys in `keys` at `revision`, page by page, put into the destination.
    private static func copyBase(
        from source: EtcdClient, to mirror: EtcdClient, keys: (key: Data, end: Data), revision: Int64,
        rename: @Sendable (Data) -> Data, total: Counter
    ) async throws {
        var range = Etcdserverpb_RangeRequest()
        range.key = keys.key
        range.rangeEnd = keys.end
        range.limit = pageSize
        range.revision = revision
        while true {
            let page = try await source.range(range)
            for kv in page.kvs {
                _ = try await mirror.put(.with { $0.key = rename(kv.key); $0.value = kv.value })
                total.value.add(1, ordering: .relaxed)
            }
            guard page.more, let last = page.kvs.last else { return }
            range.key = last.key + Data([0])
        }
    }

    /// Every change in `keys` after `revision`, one destination txn per source revision.
    private static func replayUpdates(
        from source: EtcdClient, to mirror: EtcdClient, keys: (key: Data, end: Data), after revision: Int64,
        rename: @escaping @Sendable (Data) -> Data, total: Counter
    ) async throws {
        var create = Etcdserverpb_WatchCreateRequest()
        create.key = keys.key
        create.rangeEnd = keys.end
        create.startRevision = revision + 1
        try await source.watch(
            produce: { [create] writer in
                try await writer.write(.with { $0.createRequest = create })
                while true { try await Task.sleep(for: .seconds(3600)) }
            },
            onResponse: { response in
                if response.compactRevision != 0 {
                    throw EtcdClientError(code: .outOfRange, message: "etcdserver: mvcc: required revision has been compacted")
                }
                var ops: [Etcdserverpb_RequestOp] = []
                var opsRevision: Int64 = 0
                for event in response.events {
                    if opsRevision != 0 && event.kv.modRevision > opsRevision {
                        _ = try await mirror.txn(.with { $0.success = ops })
                        ops = []
                    }
                    opsRevision = event.kv.modRevision
                    let key = rename(event.kv.key)
                    ops.append(event.type == .delete
                        ? .with { $0.requestDeleteRange = .with { $0.key = key } }
                        : .with { $0.requestPut = .with { $0.key = key; $0.value = event.kv.value } })
                    total.value.add(1, ordering: .relaxed)
                }
                if !ops.isEmpty { _ = try await mirror.txn(.with { $0.success = ops }) }
                return true
            })
    }

    /// Go's `strings.Replace(key, old, new, 1)`: the first occurrence of `old` anywhere in the key (an empty
    /// `old` matches at the start).
    static func replacingFirst(_ old: String, with new: String, in key: Data) -> Data {
        let bytes = [UInt8](key), pattern = [UInt8](old.utf8)
        guard !pattern.isEmpty else { return Data(new.utf8) + key }
        guard bytes.count >= pattern.count else { return key }
        for start in 0...(bytes.count - pattern.count) where Array(bytes[start..<start + pattern.count]) == pattern {
            return Data(bytes[..<start]) + Data(new.utf8) + Data(bytes[(start + pattern.count)...])
        }
        return key
    }
}

/// The count of mirrored keys and events, read by the 30-second report.
final class Counter: Sendable {
    let value = Atomic<Int64>(0)
}
