internal import EtcdAPI
internal import Raft
internal import Storage
internal import SwiftProtobuf

/// One member as the cluster knows it (etcd `membership.Member`).
package struct MemberRecord: Sendable, Equatable {
    package var id: MemberID
    /// Empty until the member publishes its attributes after start.
    package var name: String
    package var peerURLs: [String]
    /// Empty until the member publishes its attributes after start.
    package var clientURLs: [String]
    package var isLearner: Bool
}

/// An alarm raised by one member (etcd `AlarmMember`).
struct ActiveAlarm: Sendable, Hashable {
    var member: MemberID
    var alarm: Etcdserverpb_AlarmType

    /// Go's text form of `AlarmMember`, as etcd lists alarms in Status errors.
    var description: String { "memberID:\(member.value) alarm:\(alarm.goName) " }
}

extension Etcdserverpb_AlarmType {
    var goName: String {
        switch self {
        case .none: "NONE"
        case .nospace: "NOSPACE"
        case .corrupt: "CORRUPT"
        case .UNRECOGNIZED(let value): "\(value)"
        }
    }
}

/// The membership as of the applied index, stored in the `cluster` column family in the same
/// batch as the applied index, so that a restart sees exactly the membership it applied.
struct Membership: Sendable, Equatable {
    var members: [MemberRecord] = []
    /// IDs removed from the cluster; they may never rejoin under the same ID (etcd rule).
    var removed: Set<UInt64> = []
    /// Active alarms, in the order raised (etcd's alarm store).
    var alarms: [ActiveAlarm] = []

    /// The NOSPACE alarm is active on some member: writes that add data are refused everywhere.
    var isCapped: Bool { alarms.contains { $0.alarm == .nospace } }
    /// The CORRUPT alarm is active on some member: every write is refused everywhere.
    var isCorrupt: Bool { alarms.contains { $0.alarm == .corrupt } }

    static let family = "cluster"
    static let membersKey = Array("members".utf8)
    /// The identity lives with the member's own Raft state, not in `cluster`: the `cluster` family
    /// is part of the snapshot image, and installing a leader's image must not make this member
    /// take the leader's ID.
    static let identityFamily = "raft_state"
    static let identityKey = Array("identity".utf8)

    func member(_ id: MemberID) -> MemberRecord? { members.first { $0.id == id } }

    mutating func upsert(_ record: MemberRecord) {
        if let index = members.firstIndex(where: { $0.id == record.id }) {
            members[index] = record
        } else {
            members.append(record)
            members.sort { $0.id.value < $1.id.value }
        }
    }

    mutating func remove(_ id: MemberID) {
        members.removeAll { $0.id == id }
        removed.insert(id.value)
    }

    static func load(from database: Database) throws -> Membership? {
        guard let bytes = try database.get(database.columnFamily(family), membersKey) else { return nil }
        let list = try Kvdpb_MemberList(serializedBytes: bytes)
        var membership = Membership()
        membership.members = list.members.map {
            MemberRecord(id: MemberID($0.id), name: $0.name, peerURLs: $0.peerUrls, clientURLs: $0.clientUrls, isLearner: $0.isLearner)
        }
        membership.removed = Set(list.removed)
        membership.alarms = list.alarms.map { ActiveAlarm(member: MemberID($0.memberID), alarm: $0.alarm) }
        return membership
    }

    func save(into batch: WriteBatch, database: Database) {
        var list = Kvdpb_MemberList()
        list.members = members.map { record in
            var member = Kvdpb_Member()
            member.id = record.id.value
            member.name = record.name
            member.peerUrls = record.peerURLs
            member.clientUrls = record.clientURLs
            member.isLearner = record.isLearner
            return member
        }
        list.removed = removed.sorted()
        list.alarms = alarms.map(Etcdserverpb_AlarmMember.init)
        // Serializing a message we built cannot fail.
        let bytes: [UInt8] = (try? list.serializedBytes()) ?? []
        batch.put(database.columnFamily(Self.family), Self.membersKey, bytes)
    }

    /// The cluster ID and this member's ID, fixed at first start.
    static func loadIdentity(from database: Database) throws -> (cluster: MemberID, member: MemberID)? {
        guard let bytes = try database.get(database.columnFamily(identityFamily), identityKey), bytes.count == 16 else { return nil }
        let cluster = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let member = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (MemberID(cluster), MemberID(member))
    }

    static func saveIdentity(cluster: MemberID, member: MemberID, into batch: WriteBatch, database: Database) {
        batch.put(database.columnFamily(identityFamily), identityKey, RaftLogStore.key(LogIndex(cluster.value)) + RaftLogStore.key(LogIndex(member.value)))
    }
}

extension Etcdserverpb_AlarmMember {
    init(_ alarm: ActiveAlarm) {
        self.init()
        memberID = alarm.member.value
        self.alarm = alarm.alarm
    }
}
