// The output of watch, lease, alarm and snapshot status against what etcdctl 3.4.23 prints for the same responses
// (captured from etcdctl against kvd), the routing of watch responses to watches, and snapshot status computed
// from a small kvd image built here (checksums against published test vectors and Python's zlib).
import EtcdAPI
import Foundation
import Testing

@testable import kvctl

@Suite struct StreamCommandTests {
    private func header(revision: Int64) -> Etcdserverpb_ResponseHeader {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = 15_118_495_548_433_857_066
        header.memberID = 13_668_033_151_171_901_709
        header.revision = revision
        header.raftTerm = 2
        return header
    }

    private func event(_ type: Mvccpb_Event.EventType, _ key: String, _ value: String, mod: Int64) -> Mvccpb_Event {
        var event = Mvccpb_Event()
        event.type = type
        event.kv.key = Data(key.utf8)
        event.kv.value = Data(value.utf8)
        event.kv.modRevision = mod
        if type == .put {
            event.kv.createRevision = 8
            event.kv.version = mod - 7
        }
        return event
    }

    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    // MARK: watch

    @Test func watchEventsAsEtcdctlJSON() throws {
        var response = Etcdserverpb_WatchResponse()
        response.header = header(revision: 11)
        response.watchID = 3  // not in etcdctl's output: clientv3.WatchResponse has no watch ID
        response.events = [event(.delete, "w1", "", mod: 11)]
        #expect(
            text(try WatchOutput.render(response, OutputStyle(.json)))
                == #"{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":11,"#
                + #""raft_term":2},"Events":[{"type":1,"kv":{"key":"dzE=","mod_revision":11}}],"CompactRevision":0,"#
                + #""Canceled":false,"Created":false}"# + "\n")
    }

    @Test func compactedWatchAsEtcdctlJSONAndMessage() throws {
        var response = Etcdserverpb_WatchResponse()
        response.header = header(revision: 11)
        response.canceled = true
        response.compactRevision = 9
        #expect(
            text(try WatchOutput.render(response, OutputStyle(.json)))
                == #"{"Header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":11,"#
                + #""raft_term":2},"Events":[],"CompactRevision":9,"Canceled":true,"Created":false}"# + "\n")
        #expect(WatchOutput.cancelMessage(response) == "etcdserver: mvcc: required revision has been compacted")
        #expect(try WatchOutput.render(response, OutputStyle(.simple)).isEmpty)
        response.compactRevision = 0
        #expect(WatchOutput.cancelMessage(response) == "etcdserver: mvcc: required revision is a future revision")
        response.cancelReason = "etcdserver: permission denied"
        #expect(WatchOutput.cancelMessage(response) == "etcdserver: permission denied")
        response.cancelReason = "something else"
        #expect(WatchOutput.cancelMessage(response) == "rpc error: code = FailedPrecondition desc = something else")
    }

    @Test func watchEventsAsSimpleAndFields() throws {
        var response = Etcdserverpb_WatchResponse()
        response.header = header(revision: 9)
        var put = event(.put, "w1", "b", mod: 9)
        put.prevKv = event(.put, "w1", "a", mod: 8).kv
        response.events = [put]
        #expect(text(try WatchOutput.render(response, OutputStyle(.simple))) == "PUT\nw1\na\nw1\nb\n")
        #expect(
            text(try WatchOutput.render(response, OutputStyle(.simple, isHex: true)))
                == "PUT\n\\x77\\x31\n\\x61\n\\x77\\x31\n\\x62\n")
        #expect(
            text(try WatchOutput.render(response, OutputStyle(.fields)))
                == "\"ClusterID\" : 15118495548433857066\n\"MemberID\" : 13668033151171901709\n\"Revision\" : 9\n"
                + "\"RaftTerm\" : 2\n\"Type\" : PUT\n\"PrevKey\" : \"w1\"\n\"PrevCreateRevision\" : 8\n"
                + "\"PrevModRevision\" : 8\n\"PrevVersion\" : 1\n\"PrevValue\" : \"a\"\n\"PrevLease\" : 0\n"
                + "\"Key\" : \"w1\"\n\"CreateRevision\" : 8\n\"ModRevision\" : 9\n\"Version\" : 2\n"
                + "\"Value\" : \"b\"\n\"Lease\" : 0\n")
        #expect(throws: CommandExit.self) { try WatchOutput.render(response, OutputStyle(.table)) }
    }

    @Test func watchCommandIsWhatFollowsTheSeparator() {
        // The flag parser leaves "foo" and, after `--`, every word (even flag-like ones) as positional.
        let split = WatchCommand.splitCommand(
            ["foo", "--rev", "1", "--", "sh", "-c", "echo"], positional: ["foo", "sh", "-c", "echo"])
        #expect(split.watch == ["foo"] && split.exec == ["sh", "-c", "echo"] && split.hasSeparator)
        let noCommand = WatchCommand.splitCommand(["foo", "--"], positional: ["foo"])
        #expect(noCommand.watch == ["foo"] && noCommand.exec.isEmpty && noCommand.hasSeparator)
        let plain = WatchCommand.splitCommand(["a", "b"], positional: ["a", "b"])
        #expect(plain.watch == ["a", "b"] && plain.exec.isEmpty && !plain.hasSeparator)
    }

    @Test func watchResponsesReachTheirWatches() {
        var state = WatchFeed.State()
        var request = Etcdserverpb_WatchCreateRequest()
        request.key = Data("a".utf8)
        state.watches = [
            WatchFeed.Watch(request: request, nextRevision: 0, isActive: true),
            WatchFeed.Watch(request: request, nextRevision: 5, isActive: true),
        ]
        state.pending = [0, 1]
        var created = Etcdserverpb_WatchResponse()
        created.created = true
        created.header = header(revision: 7)
        created.watchID = 10
        #expect(state.route(created, keepsGoing: false) == (0, nil, true))
        created.watchID = 11
        #expect(state.route(created, keepsGoing: false) == (0, nil, true))
        #expect(state.watches[0].nextRevision == 8)  // a watch from "now" resumes after the creation revision
        #expect(state.watches[1].nextRevision == 5)

        var events = Etcdserverpb_WatchResponse()
        events.header = header(revision: 9)
        events.watchID = 11
        events.events = [event(.put, "a", "x", mod: 9)]
        #expect(state.route(events, keepsGoing: false) == (1, nil, true))
        #expect(state.watches[1].nextRevision == 10)

        var progress = Etcdserverpb_WatchResponse()
        progress.header = header(revision: 12)
        progress.watchID = -1  // an answer to a progress request: every watch on the stream prints it
        #expect(state.route(progress, keepsGoing: false) == (2, nil, true))
        #expect(state.watches.map(\.nextRevision) == [13, 13])

        var canceled = Etcdserverpb_WatchResponse()
        canceled.header = header(revision: 12)
        canceled.watchID = 10
        canceled.canceled = true
        canceled.compactRevision = 9
        let compacted = "etcdserver: mvcc: required revision has been compacted"
        #expect(state.route(canceled, keepsGoing: false) == (1, compacted, true))  // watch 11 still runs
        canceled.watchID = 11
        #expect(state.route(canceled, keepsGoing: false) == (1, compacted, false))
        #expect(state.route(events, keepsGoing: false) == (0, nil, true))  // nothing for an ended watch
    }

    @Test func interactiveLinesSplitAsEtcdctl() {
        #expect(WatchCommand.argify("watch  foo --prefix") == ["watch", "foo", "--prefix"])
        #expect(WatchCommand.argify("watch \"a b\" c") == ["watch", "a b", "c"])
        #expect(WatchCommand.argify("") == [])
    }

    // MARK: lease

    @Test func leaseOutputAsEtcdctl() throws {
        var grant = Etcdserverpb_LeaseGrantResponse()
        grant.header = header(revision: 3)
        grant.id = 0x390d_a21a_fe42_f603
        grant.ttl = 60
        #expect(text(try LeaseOutput.grant(grant, OutputStyle(.simple))) == "lease 390da21afe42f603 granted with TTL(60s)\n")
        #expect(
            text(try LeaseOutput.grant(grant, OutputStyle(.json)))
                == #"{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":3,"raft_term":2,"#
                + #""ID":4111120271677781507,"TTL":60,"Error":""}"# + "\n")

        var ttl = Etcdserverpb_LeaseTimeToLiveResponse()
        ttl.header = header(revision: 3)
        ttl.id = grant.id
        ttl.ttl = 59
        ttl.grantedTtl = 60
        ttl.keys = [Data("b".utf8), Data("c".utf8)]
        #expect(
            text(try LeaseOutput.timeToLive(ttl, keys: true, OutputStyle(.simple)))
                == "lease 390da21afe42f603 granted with TTL(60s), remaining(59s), attached keys([b c])\n")
        #expect(
            text(try LeaseOutput.timeToLive(ttl, keys: true, OutputStyle(.json)))
                == #"{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":3,"raft_term":2,"#
                + #""id":4111120271677781507,"ttl":59,"granted-ttl":60,"keys":["Yg==","Yw=="]}"# + "\n")
        ttl.keys = []
        ttl.grantedTtl = 0
        ttl.ttl = -1
        #expect(
            text(try LeaseOutput.timeToLive(ttl, keys: false, OutputStyle(.simple)))
                == "lease 390da21afe42f603 already expired\n")
        #expect(text(try LeaseOutput.timeToLive(ttl, keys: false, OutputStyle(.json))).hasSuffix(#""keys":null}"# + "\n"))

        var leases = Etcdserverpb_LeaseLeasesResponse()
        leases.header = header(revision: 3)
        var status = Etcdserverpb_LeaseStatus()
        status.id = 0x2a
        leases.leases = [status]
        #expect(text(try LeaseOutput.leases(leases, OutputStyle(.simple))) == "found 1 leases\n000000000000002a\n")

        var revoke = Etcdserverpb_LeaseRevokeResponse()
        revoke.header = header(revision: 7)
        #expect(text(try LeaseOutput.revoke(id: 0x2a, revoke, OutputStyle(.simple))) == "lease 000000000000002a revoked\n")
        do {
            _ = try LeaseOutput.revoke(id: 0x2a, revoke, OutputStyle(.protobuf))
            Issue.record("protobuf output of a revoke must fail as etcdctl's does")
        } catch {
            #expect(
                error.message
                    == "marshal unsupported for type clientv3.LeaseRevokeResponse ({cluster_id:15118495548433857066 "
                    + "member_id:13668033151171901709 revision:7 raft_term:2 })")
            #expect(error.code == .badFeature)
        }
    }

    // MARK: alarm

    @Test func alarmOutputAsEtcdctl() throws {
        var response = Etcdserverpb_AlarmResponse()
        response.header = header(revision: 4)
        var alarm = Etcdserverpb_AlarmMember()
        alarm.memberID = 13_668_033_151_171_901_709
        alarm.alarm = .nospace
        response.alarms = [alarm]
        #expect(text(try AlarmOutput.render(response, OutputStyle(.simple))) == "memberID:13668033151171901709 alarm:NOSPACE \n")
        #expect(
            text(try AlarmOutput.render(response, OutputStyle(.json)))
                == #"{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":4,"#
                + #""raft_term":2},"alarms":[{"memberID":13668033151171901709,"alarm":1}]}"# + "\n")
        #expect(text(try AlarmOutput.render(Etcdserverpb_AlarmResponse(), OutputStyle(.json))) == "{}\n")
    }

    // MARK: snapshot status

    @Test func checksumsMatchTestVectors() {
        let hex = SHA256Digest.hash(Array("abc".utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = SHA256Digest.hash([UInt8](repeating: 0x61, count: 1000)).map { String(format: "%02x", $0) }.joined()
        #expect(long == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        var crc = CRC32()
        crc.update(Array("1234".utf8))
        crc.update(Array("56789".utf8))
        #expect(crc.value == 0xCBF4_3926)
    }

    /// A kvd image: kv, key_index (key "a" put then deleted, "b\0c" and "c" live), meta, cluster; end marker,
    /// padding to 512, SHA-256.
    private func image() -> [UInt8] {
        func revision(_ main: Int64) -> [UInt8] {
            (0..<8).map { UInt8(truncatingIfNeeded: main >> (56 - 8 * $0)) } + [UInt8](repeating: 0, count: 8)
        }
        func length(_ count: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: count >> (24 - 8 * $0)) } }
        let records: [(UInt8, [UInt8], [UInt8])] = [
            (0, revision(2), Array("A".utf8)),
            (1, [0x61, 0, 1] + revision(2), [0]),
            (1, [0x61, 0, 1] + revision(3), [1]),
            (1, [0x62, 0, 0xFF, 0x63, 0, 1] + revision(4), [0]),
            (1, [0x63, 0, 1] + revision(5), [0]),
            (2, Array("current_revision".utf8), [0, 0, 0, 0, 0, 0, 0, 5]),
            (4, Array("m".utf8), Array("x".utf8)),
        ]
        var bytes: [UInt8] = []
        for (family, key, value) in records {
            bytes += [family] + length(key.count) + key + length(value.count) + value
        }
        bytes.append(0xFF)
        bytes += [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
        return bytes + SHA256Digest.hash(bytes)
    }

    @Test func snapshotStatusFromKvdImage() throws {
        let bytes = image()
        let status = try SnapshotStatus(image: bytes)
        // 2954274002: Python's zlib.crc32 over the same keys and values, in order.
        #expect(status == SnapshotStatus(hash: 2_954_274_002, revision: 5, totalKey: 2, totalSize: 544))
        #expect(text(try status.render(OutputStyle(.simple))) == "b016a4d2, 5, 2, 544 B\n")
        #expect(
            text(try status.render(OutputStyle(.json)))
                == #"{"hash":2954274002,"revision":5,"totalKey":2,"totalSize":544}"# + "\n")
    }

    @Test func snapshotStatusRefusesDamagedImages() {
        var bytes = image()
        bytes[3] ^= 1
        #expect(throws: CommandExit.self) { try SnapshotStatus(image: bytes) }
        do {
            _ = try SnapshotStatus(image: Array(image().dropLast()))
            Issue.record("a file without the digest must be refused")
        } catch {
            #expect(error.message == "sha256 checksum not found [bytes: 543]")
        }
        // A valid digest over records that stop short of the end marker.
        var short = [UInt8](repeating: 0, count: 512)
        short[0] = 1
        short[4] = 200
        #expect(throws: CommandExit.self) { try SnapshotStatus(image: short + SHA256Digest.hash(short)) }
    }

    // MARK: check perf

    @Test func perfVerdictAsEtcdctl() {
        var samples = PerfStats.Samples()
        samples.total = .seconds(2)
        for _ in 0..<150 { samples.add(.milliseconds(10), error: nil) }
        for _ in 0..<150 { samples.add(.milliseconds(30), error: nil) }
        let passing = PerfStats(samples, limit: 150)
        #expect(passing.requestsPerSecond == 150)
        #expect(abs(passing.stddevSeconds - 0.01) < 1e-9)
        #expect(
            passing.verdict() == (
                "PASS: Throughput is 151 writes/s\nPASS: Slowest request took 0.030000s\nPASS: Stddev is 0.010000s\n"
                    + "PASS\n", true
            ))

        samples.add(.milliseconds(700), error: nil)
        samples.add(.milliseconds(5), error: "etcdserver: too many requests")
        samples.total = .seconds(3)
        let failing = PerfStats(samples, limit: 150)
        #expect(
            failing.verdict().text
                == "FAIL: too many errors\nFAIL: ERROR(etcdserver: too many requests) -> 1\n"
                + "FAIL: Throughput too low: 101 writes/s\nSlowest request took too long: 0.700000s\n"
                + "PASS: Stddev is 0.040383s\nFAIL\n")
        #expect(!failing.verdict().isPass)
    }
}
