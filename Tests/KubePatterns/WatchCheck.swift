// Judges what a Watcher received, as kube-apiserver's watch cache depends on it: the cache starts
// from a list at revision R and applies the events of a watch from R + 1. So the events must come
// in revision order, exactly once, with prev_kv equal to the object the cache holds (updates and
// deletes), and a create must look like one. A progress response tells the cache "you have
// everything up to here": it must not go back, must not be below the list revision, and must not
// precede events at or below it. Gaps show when the replayed model differs from a list at the end.

internal import EtcdAPI
internal import Foundation

/// What a list returns for one key: the fields the watch cache keeps.
struct StoredObject: Equatable, CustomStringConvertible {
    var value: Data
    var createRevision: Int64
    var modRevision: Int64
    var version: Int64
    var lease: Int64

    init(_ kv: Mvccpb_KeyValue) {
        value = kv.value
        createRevision = kv.createRevision
        modRevision = kv.modRevision
        version = kv.version
        lease = kv.lease
    }

    var description: String {
        "{value \(value.text.prefix(24)), create \(createRevision), mod \(modRevision), version \(version), lease \(lease)}"
    }
}

typealias Model = [Data: StoredObject]

func model(of kvs: [Mvccpb_KeyValue]) -> Model {
    Dictionary(kvs.map { ($0.key, StoredObject($0)) }, uniquingKeysWith: { first, _ in first })
}

struct WatchCheck {
    /// Violations per guarantee: how many, and the first one.
    private var violations: [String: (count: Int, first: String)] = [:]
    private(set) var model: Model
    private(set) var eventRevisions = Set<Int64>()
    private(set) var events: [Mvccpb_Event] = []
    private(set) var requestedProgress = 0
    private(set) var periodicProgress = 0
    private(set) var sessions = 0

    /// The guarantees checked, each reported as one line. "start revision - 1": a watch from the
    /// list revision + 1 on a store that has not moved since reports the list revision, which is
    /// what the watcher already has; anything lower would take the watch cache backwards.
    static let guarantees = [
        "every stream starts with a created response whose header revision >= start revision - 1",
        "events in revision order, exactly once, none before the stream's start revision",
        "a response's header revision >= the revisions of its events",
        "a create has create_revision == mod_revision, version 1, no prev_kv, and the key was absent",
        "every update has prev_kv equal to the object the watcher held",
        "every delete has prev_kv equal to the object the watcher held",
        "a progress response has watch_id -1 (RequestProgress) or the watcher's ID (progress_notify)",
        "a progress revision never goes back and is never below the start revision - 1",
        "a progress response never precedes events at or below its revision",
    ]

    private mutating func violate(_ guarantee: Int, _ detail: @autoclosure () -> String) {
        let name = Self.guarantees[guarantee]
        if let existing = violations[name] {
            violations[name] = (existing.count + 1, existing.first)
        } else {
            violations[name] = (1, detail())
        }
    }

    init(_ items: [Watcher.Item], initial: Model) {
        model = initial
        var sessionStart: Int64 = 0
        var expectCreated = false
        var watchID: Int64? = nil
        var lastRevision: Int64 = 0
        var keysAtLastRevision = Set<Data>()
        var progressRevision: Int64 = 0
        for item in items {
            switch item {
            case .session(_, let start):
                sessionStart = start
                expectCreated = true
                sessions += 1
            case .ended:
                continue
            case .response(let response):
                if expectCreated {
                    expectCreated = false
                    if !response.created || response.header.revision < sessionStart - 1 {
                        violate(
                            0,
                            "first response created=\(response.created) header \(response.header.revision), start \(sessionStart)"
                        )
                    }
                    watchID = response.watchID
                    continue
                }
                if response.canceled { continue }
                if response.events.isEmpty {
                    checkProgress(
                        response, watchID: watchID, start: sessionStart, last: &progressRevision,
                        lastEvent: lastRevision)
                    continue
                }
                if let top = response.events.last?.kv.modRevision, response.header.revision < top {
                    violate(2, "header \(response.header.revision) with an event at \(top)")
                }
                for event in response.events {
                    let revision = event.kv.modRevision
                    if revision < sessionStart || revision < lastRevision
                        || (revision == lastRevision && keysAtLastRevision.contains(event.kv.key))
                    {
                        violate(
                            1,
                            "\(event.type) \(event.kv.key.text) at \(revision) after \(lastRevision), start \(sessionStart)"
                        )
                        continue
                    }
                    if revision <= progressRevision {
                        violate(
                            8, "\(event.type) \(event.kv.key.text) at \(revision) after progress \(progressRevision)")
                    }
                    if revision > lastRevision { keysAtLastRevision.removeAll() }
                    keysAtLastRevision.insert(event.kv.key)
                    lastRevision = revision
                    apply(event)
                }
            }
        }
    }

    private mutating func checkProgress(
        _ response: Etcdserverpb_WatchResponse, watchID: Int64?, start: Int64, last: inout Int64, lastEvent: Int64
    ) {
        if response.watchID == -1 {
            requestedProgress += 1
        } else if response.watchID == watchID {
            periodicProgress += 1
        } else {
            violate(6, "watch_id \(response.watchID), watcher \(watchID.map(String.init) ?? "none")")
        }
        let revision = response.header.revision
        if revision < last || revision < start - 1 || revision < lastEvent {
            violate(7, "progress \(revision) after progress \(last), event \(lastEvent), start \(start)")
        }
        last = max(last, revision)
    }

    private mutating func apply(_ event: Mvccpb_Event) {
        events.append(event)
        eventRevisions.insert(event.kv.modRevision)
        let key = event.kv.key
        let held = model[key]
        switch event.type {
        case .put where event.kv.createRevision == event.kv.modRevision:
            if event.kv.version != 1 || event.hasPrevKv || held != nil {
                violate(
                    3,
                    "\(key.text): version \(event.kv.version), prev_kv \(event.hasPrevKv), held \(held.map { "\($0)" } ?? "nil")"
                )
            }
            model[key] = StoredObject(event.kv)
        case .put:
            if !event.hasPrevKv || held == nil || StoredObject(event.prevKv) != held {
                violate(
                    4,
                    "\(key.text) at \(event.kv.modRevision): prev_kv \(event.hasPrevKv ? "\(StoredObject(event.prevKv))" : "absent"), held \(held.map { "\($0)" } ?? "nil")"
                )
            }
            model[key] = StoredObject(event.kv)
        case .delete:
            if !event.hasPrevKv || held == nil || StoredObject(event.prevKv) != held {
                violate(
                    5,
                    "\(key.text) at \(event.kv.modRevision): prev_kv \(event.hasPrevKv ? "\(StoredObject(event.prevKv))" : "absent"), held \(held.map { "\($0)" } ?? "nil")"
                )
            }
            model[key] = nil
        case .UNRECOGNIZED(let raw):
            violate(1, "event type \(raw)")
        }
    }

    /// One line per guarantee.
    func report(to report: Report, label: String) {
        for guarantee in Self.guarantees {
            let violation = violations[guarantee]
            report.check(
                violation == nil, "\(label): \(guarantee)",
                seen: violation.map { "\($0.count) violations, first: \($0.first)" } ?? "")
        }
    }
}
