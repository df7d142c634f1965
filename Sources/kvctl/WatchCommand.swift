// `watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]` and `watch -i` (etcdctl
// watch_command.go over clientv3's watcher): one Watch stream carrying every watch, each response printed as it
// comes, "progress notify: N" lines, the command after `--` run once per event, and the end etcdctl gives a watch
// the server cancels ("watch was canceled (...)", then exit 5).

import EtcdAPI
import Foundation
import KVClient
import Synchronization
import SwiftProtobuf

enum WatchCommand {
    static let flags: [FlagSpec] = [
        FlagSpec(name: "interactive", shorthand: "i", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "prefix", kind: .bool, defaultValue: "false"),
        FlagSpec(name: "rev", kind: .int64, defaultValue: "0"),
        FlagSpec(name: "prev-kv", kind: .bool, defaultValue: "false"),
        // NB: an etcdctl 3.5 flag (3.4 has none); kept out of the usage text, which is 3.4's.
        FlagSpec(name: "progress-notify", kind: .bool, defaultValue: "false"),
    ]

    static func run(_ flags: ParsedFlags) async {
        let environment = ProcessInfo.processInfo.environment
        let envKey = environment["ETCDCTL_WATCH_KEY"] ?? "", envRange = environment["ETCDCTL_WATCH_RANGE_END"] ?? ""
        if envKey.isEmpty && !envRange.isEmpty {
            exitWithError(.badArgs, "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=\(GoFormat.quote(envRange))")
        }
        if flags.bool("interactive") {
            await interactive(flags, envKey: envKey, envRange: envRange)
            return
        }
        // The parser hands back what follows `--` as positional arguments: the command is split off by where
        // `--` stands in the raw arguments after "watch".
        let raw = CommandLine.arguments.drop(while: { $0 != "watch" }).dropFirst()
        let command = splitCommand(Array(raw), positional: flags.positional)
        if command.hasSeparator && command.exec.isEmpty { exitWithError(.badArgs, separatorError) }
        if !command.watch.isEmpty && !envKey.isEmpty {
            exitWithError(.badArgs, "bad number of arguments (found conflicting environment key)")
        }
        let arguments = envKey.isEmpty ? command.watch : [envKey] + (envRange.isEmpty ? [] : [envRange])
        if arguments.isEmpty { exitWithError(.badArgs, "bad number of arguments") }
        let session = Session.make(flags)
        let create: Etcdserverpb_WatchCreateRequest
        switch makeCreate(arguments, flags) {
        case .success(let request): create = request
        case .failure(let error): exitWithError(.badArgs, error.message)
        }
        let feed = WatchFeed(style: session.style, keepsGoing: false)
        feed.add(create, exec: command.exec)
        await feed.run(session)
        exitWithError(.interrupted, "watch is canceled by the server")
    }

    static let separatorError = "bad number of arguments (found separator --, but no commands)"

    /// The watch's own arguments and the command after the first `--` of `raw` (etcdctl's parseWatchArgs).
    /// `positional` is what the flag parser left, the words after `--` at its end.
    static func splitCommand(_ raw: [String], positional: [String]) -> (watch: [String], exec: [String], hasSeparator: Bool) {
        guard let separator = raw.firstIndex(of: "--") else { return (positional, [], false) }
        let exec = Array(raw[(separator + 1)...])
        return (Array(positional.dropLast(exec.count)), exec, true)
    }

    /// etcdctl's getWatchChan: the create request for `arguments` (key, optional range end) and the flags.
    static func makeCreate(
        _ arguments: [String], _ flags: ParsedFlags
    ) -> Result<Etcdserverpb_WatchCreateRequest, CommandExit> {
        guard let key = arguments.first else { return .failure(CommandExit(.badArgs, "bad number of arguments")) }
        let prefix = flags.bool("prefix")
        if arguments.count == 2 && prefix {
            return .failure(CommandExit(.badArgs, "`range_end` and `--prefix` are mutually exclusive"))
        }
        let range = KeyRanges.resolve(
            key: key, rangeEnd: arguments.count == 2 ? arguments[1] : nil, prefix: prefix, fromKey: false)
        var request = Etcdserverpb_WatchCreateRequest()
        request.key = range.key
        request.rangeEnd = range.end
        request.startRevision = flags.int64("rev")
        request.prevKv = flags.bool("prev-kv")
        request.progressNotify = flags.bool("progress-notify")
        return .success(request)
    }

    /// `watch -i`: `watch ...` and `progress` lines from stdin, each watch added to the one stream; the end of
    /// stdin ends the command (etcdctl: exit 3).
    private static func interactive(_ flags: ParsedFlags, envKey: String, envRange: String) async {
        let session = Session.make(flags)
        let feed = WatchFeed(style: session.style, keepsGoing: true)
        // A thread, not a task: reading stdin blocks, and blocking work stays off the cooperative pool.
        let reader = Thread {
            while let line = readLine(strippingNewline: true) {
                handle(line: line, feed: feed, envKey: envKey, envRange: envRange)
            }
            exitWithError(.invalidInput, "Error reading watch request line: EOF")
        }
        reader.start()
        await feed.run(session)
    }

    static func handle(line: String, feed: WatchFeed, envKey: String, envRange: String) {
        let words = argify(line)
        guard let first = words.first else {
            Console.err("Invalid command: \(line) (watch and progress supported)\n")
            return
        }
        switch first {
        case "watch":
            if words.count < 2 && envKey.isEmpty {
                Console.err("Invalid command \(line) (command type or key is not provided)\n")
                return
            }
            let words = Array(words.dropFirst())
            let parsed: ParsedFlags
            do {
                parsed = try FlagParser(specs: flags).parse(words)
            } catch {
                exitWithError(.badArgs, error.message)
            }
            let command = splitCommand(words, positional: parsed.positional)
            if command.hasSeparator && command.exec.isEmpty { exitWithError(.badArgs, separatorError) }
            var arguments = command.watch
            if !envKey.isEmpty {
                if !arguments.isEmpty {
                    exitWithError(.badArgs, "bad number of arguments (found conflicting environment key)")
                }
                arguments = [envKey] + (envRange.isEmpty ? [] : [envRange])
            }
            if arguments.isEmpty { exitWithError(.badArgs, "bad number of arguments") }
            switch makeCreate(arguments, parsed) {
            case .success(let request): feed.add(request, exec: command.exec)
            case .failure(let error): Console.err("Invalid command \(line) (\(error.message))\n")
            }
        case "progress":
            feed.requestProgress()
        default:
            Console.err("Invalid command \(line) (only support watch)\n")
        }
    }

    /// etcdctl's argify: words split on spaces, a double-quoted word kept whole and unquoted as Go's strconv does.
    static func argify(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quoted = false
        var inWord = false
        var previous: Character? = nil
        for character in line {
            if character == "\"" && previous != "\\" {
                quoted.toggle()
                current.append(character)
                inWord = true
            } else if character == " " && !quoted {
                if inWord { words.append(unquote(current)) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
            previous = character
        }
        if inWord { words.append(unquote(current)) }
        return words
    }

    private static func unquote(_ word: String) -> String {
        guard word.count >= 2, word.hasPrefix("\""), word.hasSuffix("\"") else { return word }
        return String(word.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"")
    }
}

/// The watches of one kvctl process and the Watch stream that carries them: which server watch ID is which
/// watch, where each would resume after a reconnection, and what to print for each response.
final class WatchFeed: Sendable {
    /// How responses are printed.
    let style: OutputStyle
    /// True for `watch -i`: a canceled watch does not end the command.
    let keepsGoing: Bool
    private let state = Mutex(State())

    struct Watch {
        /// The create request as the user asked for it.
        var request: Etcdserverpb_WatchCreateRequest
        /// Where a re-created watch starts: after the last event or progress seen (0: not yet known).
        var nextRevision: Int64
        /// False once the server canceled it.
        var isActive: Bool
        /// The command run for each event (none when empty).
        var exec: [String] = []
    }

    struct State {
        /// Every watch asked for, in order.
        var watches: [Watch] = []
        /// Watches whose create request is on the current stream but not yet answered, in request order (the
        /// server answers creates in order).
        var pending: [Int] = []
        /// The server's watch IDs on the current stream.
        var byWatchID: [Int64: Int] = [:]
        /// Where new requests go: the current stream's producer (nil between streams).
        var sink: AsyncStream<Etcdserverpb_WatchRequest>.Continuation?
    }

    init(style: OutputStyle, keepsGoing: Bool) {
        self.style = style
        self.keepsGoing = keepsGoing
    }

    func add(_ request: Etcdserverpb_WatchCreateRequest, exec: [String] = []) {
        let sink = state.withLock { state in
            state.watches.append(Watch(request: request, nextRevision: request.startRevision, isActive: true, exec: exec))
            if state.sink != nil { state.pending.append(state.watches.count - 1) }
            return state.sink
        }
        var create = Etcdserverpb_WatchRequest()
        create.createRequest = request
        sink?.yield(create)
    }

    func requestProgress() {
        var progress = Etcdserverpb_WatchRequest()
        progress.progressRequest = Etcdserverpb_WatchProgressRequest()
        state.withLock { $0.sink }?.yield(progress)
    }

    /// Runs streams until no watch is active (not for `-i`); an endpoint that drops the stream is replaced as
    /// clientv3 does, every watch re-created from where it got to.
    func run(_ session: Session) async {
        while true {
            let requests = AsyncStream<Etcdserverpb_WatchRequest>.makeStream()
            let creates = state.withLock { state in
                state.sink = requests.continuation
                state.byWatchID = [:]
                let active = state.watches.indices.filter { state.watches[$0].isActive }
                state.pending = active
                return active.map { index in
                    var request = state.watches[index].request
                    request.startRevision = state.watches[index].nextRevision
                    var create = Etcdserverpb_WatchRequest()
                    create.createRequest = request
                    return create
                }
            }
            for create in creates { requests.continuation.yield(create) }
            let stream = requests.stream
            let result = await Session.attempt(session.configuration, timeout: nil) { client, _ in
                try await client.watch(
                    produce: { writer in
                        for await request in stream { try await writer.write(request) }
                    },
                    onResponse: { response in self.receive(response) })
            }
            requests.continuation.finish()
            state.withLock { $0.sink = nil }
            switch result {
            case .success:
                return
            case .failure(.call(let error)) where error.code == .unavailable || error.code == .internalError:
                if error.message == "etcdserver: no leader" {
                    closeAll(EtcdErrors.message(for: error))
                    return
                }
                try? await Task.sleep(for: .milliseconds(100))  // cancellation ends the loop below anyway
                if Task.isCancelled { return }
            case .failure(.call(let error)):
                closeAll(EtcdErrors.message(for: error))
                return
            case .failure(.authentication(let error)):
                exitWithError(.badConnection, EtcdErrors.message(for: error))
            case .failure(.setup(let text)):
                exitWithError(.badConnection, text)
            }
        }
    }

    /// One response: decides under the lock what it means, prints outside it. False ends the stream.
    private func receive(_ response: Etcdserverpb_WatchResponse) -> Bool {
        let (targets, canceledMessage, keepGoing, exec) = state.withLock { state in
            let exec = state.byWatchID[response.watchID].map { state.watches[$0].exec } ?? []
            let (targets, canceledMessage, keepGoing) = state.route(response, keepsGoing: keepsGoing)
            return (targets, canceledMessage, keepGoing, exec)
        }
        for _ in 0..<targets {
            if let canceledMessage { Console.err("watch was canceled (\(canceledMessage))\n") }
            if WatchOutput.isProgressNotify(response) {
                Console.out("progress notify: \(response.header.revision)\n")
            }
            do {
                Console.out(bytes: try WatchOutput.render(response, style))
            } catch {
                exitWithError(error.code, error.message)
            }
        }
        if !exec.isEmpty {
            for event in response.events { EventCommand.run(exec, for: event, revision: response.header.revision) }
        }
        return keepGoing
    }

    /// clientv3's closing of every watch when the stream fails for good: a canceled response carrying the error.
    private func closeAll(_ message: String) {
        let count = state.withLock { state in
            let count = state.watches.filter(\.isActive).count
            for index in state.watches.indices { state.watches[index].isActive = false }
            return count
        }
        var closing = Etcdserverpb_WatchResponse()
        closing.canceled = true
        for _ in 0..<count {
            Console.err("watch was canceled (\(message))\n")
            // Neither the header nor the event list is set in clientv3's closing response.
            if let bytes = try? WatchOutput.render(closing, style, eventsNil: true) {  // printing only; no failure
                Console.out(bytes: bytes)
            }
        }
    }
}

extension WatchFeed.State {
    /// How many of our watches `response` is for (a progress response for every watch reaches each), the
    /// cancellation message when it ends its watch, and whether the stream is still wanted.
    mutating func route(_ response: Etcdserverpb_WatchResponse, keepsGoing: Bool) -> (Int, String?, Bool) {
        if response.created, !pending.isEmpty {
            let index = pending.removeFirst()
            byWatchID[response.watchID] = index
            if watches[index].nextRevision == 0 { watches[index].nextRevision = response.header.revision + 1 }
            if !response.canceled { return (0, nil, true) }
        }
        // clientv3.InvalidWatchID: a progress response to a progress request, for every watch on the stream.
        if response.watchID == -1 && WatchOutput.isProgressNotify(response) {
            let active = byWatchID.values.filter { watches[$0].isActive }
            for index in active { watches[index].nextRevision = response.header.revision + 1 }
            return (active.count, nil, true)
        }
        guard let index = byWatchID[response.watchID], watches[index].isActive else { return (0, nil, true) }
        if let last = response.events.last {
            watches[index].nextRevision = last.kv.modRevision + 1
        } else if WatchOutput.isProgressNotify(response) {
            watches[index].nextRevision = response.header.revision + 1
        }
        guard response.canceled else { return (1, nil, true) }
        watches[index].isActive = false
        let anyActive = watches.contains(where: \.isActive)
        return (1, WatchOutput.cancelMessage(response), keepsGoing || anyActive)
    }
}

enum WatchOutput {
    /// clientv3's IsProgressNotify.
    static func isProgressNotify(_ response: Etcdserverpb_WatchResponse) -> Bool {
        response.events.isEmpty && !response.canceled && !response.created && response.compactRevision == 0
            && response.header.revision != 0
    }

    /// clientv3's WatchResponse.Err for a canceled watch.
    static func cancelMessage(_ response: Etcdserverpb_WatchResponse) -> String {
        if response.compactRevision != 0 { return "etcdserver: mvcc: required revision has been compacted" }
        guard !response.cancelReason.isEmpty else { return "etcdserver: mvcc: required revision is a future revision" }
        let reason = response.cancelReason
        // etcd writes an auth refusal's reason as a whole gRPC status text; etcdctl shows it as is.
        return EtcdErrors.knownMessages.contains(reason) || reason.hasPrefix("rpc error: code = ")
            ? reason : "rpc error: code = FailedPrecondition desc = \(reason)"
    }

    /// display.Watch: simple (event type, then prev_kv and kv as get prints them), json (clientv3.WatchResponse,
    /// untagged, so its Go field names), fields, protobuf (pb.WatchResponse without the watch ID); table refuses.
    static func render(
        _ response: Etcdserverpb_WatchResponse, _ style: OutputStyle, eventsNil: Bool = false
    ) throws(CommandExit) -> [UInt8] {
        switch style.format {
        case .simple:
            return response.events.flatMap { event in
                Array((event.type == .delete ? "DELETE\n" : "PUT\n").utf8)
                    + (event.hasPrevKv ? SimplePrinter.kvBytes(event.prevKv, isHex: style.isHex, valueOnly: false) : [])
                    + SimplePrinter.kvBytes(event.kv, isHex: style.isHex, valueOnly: false)
            }
        case .json:
            let events = response.events.map { event in
                var object = JSONObject()
                object.number("type", event.type.rawValue)
                if event.hasKv { object.raw("kv", JSONPrinter.encode(event.kv)) }
                if event.hasPrevKv { object.raw("prev_kv", JSONPrinter.encode(event.prevKv)) }
                return object.text
            }
            var object = JSONObject()
            object.raw("Header", JSONPrinter.encode(response.header))
            object.raw("Events", eventsNil ? "null" : "[" + events.joined(separator: ",") + "]")
            object.raw("CompactRevision", "\(response.compactRevision)")
            object.raw("Canceled", "\(response.canceled)")
            object.raw("Created", "\(response.created)")
            return Array((object.text + "\n").utf8)
        case .fields:
            let text =
                FieldsPrinter.headerLines(response.header)
                + response.events.map { event in
                    "\"Type\" : \(event.type == .delete ? "DELETE" : "PUT")\n"
                        + (event.hasPrevKv ? FieldsPrinter.kvLines("Prev", event.prevKv) : "")
                        + FieldsPrinter.kvLines("", event.kv)
                }.joined()
            return Array(text.utf8)
        case .protobuf:
            var message = Etcdserverpb_WatchResponse()
            message.header = response.header
            message.events = response.events
            message.compactRevision = response.compactRevision
            message.canceled = response.canceled
            message.created = response.created
            // Serialising an in-memory proto3 message cannot fail.
            return (try? message.serializedBytes()) ?? []
        case .table:
            throw unsupported(.table)
        }
    }
}
