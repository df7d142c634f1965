// `lock` and `elect` (etcdctl lock_command.go, elect_command.go): a session lease kept alive while the command
// runs, the lock or the campaign held through etcd's v3lock and v3election services until SIGINT or SIGTERM, then
// released. Output as etcdctl's: the held key as `get` prints it, each observed leader the same way.

import Dispatch
import EtcdAPI
import Foundation
import KVClient
import SwiftProtobuf
import Synchronization

/// etcd's `concurrency.Session` as etcdctl uses it: a lease of `ttl` seconds, renewed until the process ends,
/// and the events that end a held lock or candidacy (a signal, or the lease lost).
struct ClientSession {
    enum Event: Error, Hashable { case interrupted, expired }

    let lease: Int64
    let events: SessionEvents

    /// Grants the lease and starts renewing it; from now on SIGINT and SIGTERM are events, not deaths.
    static func start(_ session: Session, ttl: Int64) async -> ClientSession {
        let lease = await session.callOrExit(timeout: session.commandTimeout) { client, timeout in
            try await client.leaseGrant(ttlSeconds: ttl, timeout: timeout).id
        }
        let events = SessionEvents()
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { events.post(.interrupted) }
            source.resume()
            signalSources.append(source)
        }
        let configuration = session.configuration
        Task {
            // Ends when the lease is gone (or the member cannot be reached any more).
            _ = await Session.attempt(configuration, timeout: nil) { client, _ in
                try await client.leaseKeepAlive(id: lease) { _ in }
            }
            events.post(.expired)
        }
        return ClientSession(lease: lease, events: events)
    }

    /// Runs `work` unless a signal or the session's end comes first (then `work` is cancelled and the event
    /// returned).
    func untilEvent<T: Sendable>(_ work: @escaping @Sendable () async -> T) async -> Result<T, Event> {
        let events = self.events
        return await withTaskGroup(of: Result<T, Event>?.self) { group in
            group.addTask { .success(await work()) }
            group.addTask { await events.next(of: [.interrupted, .expired]).map { .failure($0) } }
            defer { group.cancelAll() }
            while let outcome = await group.next() {
                if let outcome { return outcome }
            }
            preconditionFailure("the work task always answers")
        }
    }
}

/// The signal sources must live as long as the process.
nonisolated(unsafe) private var signalSources: [any DispatchSourceSignal] = []

/// What has happened to a session, for any number of waiters: once posted, an event stays.
final class SessionEvents: Sendable {
    private struct State {
        var posted: Set<ClientSession.Event> = []
        var waiters: [Int: (of: Set<ClientSession.Event>, CheckedContinuation<ClientSession.Event?, Never>)] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    func post(_ event: ClientSession.Event) {
        let woken = state.withLock { state in
            state.posted.insert(event)
            let woken = state.waiters.filter { $0.value.of.contains(event) }
            for key in woken.keys { state.waiters.removeValue(forKey: key) }
            return woken.values.map(\.1)
        }
        for waiter in woken { waiter.resume(returning: event) }
    }

    /// The first of `events` that has been posted, once one is; nil if the waiting task is cancelled first.
    func next(of events: Set<ClientSession.Event>) async -> ClientSession.Event? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: ClientSession.Event?? = state.withLock { state in
                    if let event = state.posted.first(where: events.contains) { return .some(event) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = (events, continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.1.resume(returning: nil)
        }
    }
}

enum LockCommand {
    static let flags = [FlagSpec(name: "ttl", kind: .int64, defaultValue: "10")]

    static func run(_ flags: ParsedFlags) async {
        guard let name = flags.positional.first else {
            exitWithError(.badArgs, "lock takes a lock name argument and an optional command to execute")
        }
        let command = Array(flags.positional.dropFirst())
        let session = Session.make(flags)
        let clientSession = await ClientSession.start(session, ttl: flags.int64("ttl"))
        let configuration = session.configuration, lease = clientSession.lease
        let outcome = await clientSession.untilEvent {
            await Session.attempt(configuration, timeout: nil) { client, _ in
                try await client.lock(name: Data(name.utf8), lease: lease)
            }
        }
        let locked: V3lockpb_LockResponse
        switch outcome {
        case .success(.success(let response)): locked = response
        case .success(.failure(let failure)): exitWithFailure(failure)
        case .failure:
            // As etcdctl's Mutex: a holder that stops waiting removes its own key (the lock's name
            // and the session's lease) before it fails with its cancelled context.
            await removeWaitingKey(session, name: name, lease: lease)
            exitWithError(.error, "context canceled")
        }
        if !command.isEmpty {
            var environment = ProcessInfo.processInfo.environment
            environment["ETCD_LOCK_KEY"] = String(decoding: locked.key, as: UTF8.self)
            environment["ETCD_LOCK_REV"] = String(locked.header.revision)
            let failure = EventCommand.runToEnd(command, environment: environment)
            _ = await session.callOrExit(timeout: nil) { client, _ in try await client.unlock(key: locked.key) }
            if let failure { exitWithError(.error, failure) }
            return
        }
        let held = await session.callOrExit(timeout: nil) { client, _ in
            try await client.range(.with { $0.key = locked.key })
        }
        if held.kvs.isEmpty { exitWithError(.error, "lock lost on init") }
        session.display { printer throws(CommandExit) in try printer.get(held) }
        switch await clientSession.events.next(of: [.interrupted, .expired]) {
        case .interrupted, nil:
            _ = await session.callOrExit(timeout: nil) { client, _ in try await client.unlock(key: locked.key) }
        case .expired:
            exitWithError(.error, "session expired")
        }
    }
}

enum ElectCommand {
    static let flags = [FlagSpec(name: "listen", shorthand: "l", kind: .bool, defaultValue: "false")]
    /// etcd's `concurrency.NewSession` default.
    static let sessionTTL: Int64 = 60

    static func run(_ flags: ParsedFlags) async {
        let arguments = flags.positional
        guard arguments.count == 1 || arguments.count == 2 else {
            exitWithError(.badArgs, "elect takes one election name argument and an optional proposal argument")
        }
        let listen = flags.bool("listen")
        if arguments.count == 1 && !listen { exitWithError(.badArgs, "no proposal argument but -l not set") }
        if arguments.count == 2 && listen { exitWithError(.badArgs, "proposal given but -l is set") }
        let session = Session.make(flags)
        let clientSession = await ClientSession.start(session, ttl: sessionTTL)
        if listen {
            await observe(session, clientSession, name: arguments[0])
        } else {
            await campaign(session, clientSession, name: arguments[0], proposal: arguments[1])
        }
    }

    private static func observe(_ session: Session, _ clientSession: ClientSession, name: String) async {
        enum Step { case leader(V3electionpb_LeaderResponse), ended, interrupted }
        let configuration = session.configuration
        let (steps, sink) = AsyncStream<Step>.makeStream()
        let observing = Task {
            _ = await Session.attempt(configuration, timeout: nil) { client, _ in
                try await client.observe(name: Data(name.utf8)) { sink.yield(.leader($0)) }
            }
            sink.yield(.ended)
        }
        // etcdctl's observer does not use its session: only a signal ends it.
        Task {
            _ = await clientSession.events.next(of: [.interrupted])
            sink.yield(.interrupted)
        }
        for await step in steps {
            switch step {
            case .leader(let leader):
                var response = Etcdserverpb_RangeResponse()
                response.header = leader.header
                response.kvs = [leader.kv]
                response.count = 1
                session.display { printer throws(CommandExit) in try printer.get(response) }
            case .ended:
                exitWithError(.error, "elect: observer lost")
            case .interrupted:
                observing.cancel()
                return
            }
        }
    }

    private static func campaign(_ session: Session, _ clientSession: ClientSession, name: String, proposal: String) async {
        let configuration = session.configuration, lease = clientSession.lease
        let outcome = await clientSession.untilEvent {
            await Session.attempt(configuration, timeout: nil) { client, _ in
                try await client.campaign(name: Data(name.utf8), lease: lease, value: Data(proposal.utf8))
            }
        }
        let elected: V3electionpb_CampaignResponse
        switch outcome {
        case .success(.success(let response)): elected = response
        case .success(.failure(let failure)): exitWithFailure(failure)
        case .failure:
            await removeWaitingKey(session, name: name, lease: lease)  // etcd's Campaign resigns
            exitWithError(.error, "context canceled")
        }
        let held = await session.callOrExit(timeout: nil) { client, _ in
            try await client.range(.with { $0.key = elected.leader.key })
        }
        session.display { printer throws(CommandExit) in try printer.get(held) }
        switch await clientSession.events.next(of: [.interrupted, .expired]) {
        case .interrupted, nil:
            _ = await session.callOrExit(timeout: nil) { client, _ in try await client.resign(elected.leader) }
        case .expired:
            exitWithError(.error, "elect: session expired")
        }
    }
}

/// Deletes the key a lock or campaign of `lease` waits with (etcd's concurrency package names it
/// `<name>/<lease in hex>`), so that those behind it do not wait for it.
private func removeWaitingKey(_ session: Session, name: String, lease: Int64) async {
    let key = Data((name + "/" + String(lease, radix: 16)).utf8)
    _ = await Session.attempt(session.configuration, timeout: session.commandTimeout) { client, timeout in
        try await client.deleteRange(.with { $0.key = key }, timeout: timeout)
    }
}

/// A failed call ends the process as etcdctl's `ExitWithError(ExitError, err)` does.
private func exitWithFailure(_ failure: CallFailure) -> Never {
    switch failure {
    case .call(let error): exitWithError(.error, EtcdErrors.message(for: error))
    case .authentication(let error): exitWithError(.badConnection, EtcdErrors.message(for: error))
    case .setup(let text): exitWithError(.badConnection, text)
    }
}
