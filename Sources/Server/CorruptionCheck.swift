internal import EtcdAPI
internal import Foundation
internal import GRPCCore
internal import Logging
internal import MVCC
internal import Raft
internal import SwiftProtobuf
internal import Synchronization
internal import Transport

/// etcd's corruption checks. The initial one (`--experimental-initial-corrupt-check`): before a
/// member serves clients it hashes its key space at its current revision and asks every other
/// member for its hash at the same revision over the peer port. Members that applied the same log hold
/// the same history, so a peer with the same compaction point and another hash means this
/// member's data (or the peer's) is damaged: the member refuses to start rather than serve it.
/// A peer that cannot answer (down, behind, or compacted past the revision) is only logged, as
/// etcd does: the check must not keep a member of a degraded cluster from starting.
/// The periodic one (`--experimental-corrupt-check-time`) runs on the leader and raises the
/// CORRUPT alarm through Raft for the member whose data differs; while it is active every write
/// is refused with etcd's "etcdserver: corrupt cluster" until an operator disarms it.
struct CorruptionCheck {
    let loop: NodeLoop
    let transport: PeerTransport
    let memberID: MemberID
    let logger: Logger
    /// How long each peer has to answer (etcd: the request timeout).
    let timeout: Duration

    enum Failure: Error, CustomStringConvertible {
        /// This member's own hash could not be computed.
        case localHash(APIError)
        /// Peers with the same compaction point hold other data.
        case inconsistent(member: MemberID)

        var description: String {
            switch self {
            case .localHash(let error): "\(error.rpcError.message)"
            case .inconsistent(let member): "\(member) found data inconsistency with peers"
            }
        }
    }

    /// What one peer's hash says about this member's.
    enum Verdict: Equatable {
        case agrees
        /// Another hash at the same compaction point: the data differs.
        case differs
        /// Another hash, but the peer compacted elsewhere: the hashes cover different ranges.
        case otherCompaction
    }

    /// etcd's comparison: only hashes over the same range (the same compaction point) can tell.
    static func verdict(local: PeerHashKV, peer: PeerHashKV) -> Verdict {
        if local.hash == peer.hash { return .agrees }
        return local.compactRevision == peer.compactRevision ? .differs : .otherCompaction
    }

    func initialCheck() async throws(Failure) {
        logger.info("starting initial corruption check", metadata: [
            "local-member-id": "\(memberID)", "timeout": "\(timeout)",
        ])
        let local: PeerHashKV
        do {
            local = try await loop.hashKV(upTo: Revision(0))
        } catch {
            throw .localHash(error)
        }
        var mismatches = 0
        for (peer, outcome) in await peerHashes(at: local.revision) {
            var metadata: Logger.Metadata = [
                "local-member-id": "\(memberID)", "local-member-revision": "\(local.revision)",
                "local-member-hash": "\(local.hash)", "local-member-compact-revision": "\(local.compactRevision)",
                "remote-peer-id": "\(peer.id)", "remote-peer-endpoints": "\(peer.peerURLs)",
            ]
            switch outcome {
            case .success(let answer):
                metadata["remote-peer-hash"] = "\(answer.hash)"
                metadata["remote-peer-compact-revision"] = "\(answer.compactRevision)"
                switch Self.verdict(local: local, peer: answer) {
                case .agrees:
                    break
                case .differs:
                    logger.warning("found different hash values from remote peer", metadata: metadata)
                    mismatches += 1
                case .otherCompaction:
                    logger.warning("found different compact revision values from remote peer", metadata: metadata)
                }
            case .failure(let error as RPCError) where error.message == APIError.futureRevision.rpcError.message:
                logger.warning("cannot fetch hash from slow remote peer", metadata: metadata)
            case .failure(let error as RPCError) where error.message == APIError.compacted.rpcError.message:
                logger.warning("cannot fetch hash from remote peer; local member is behind", metadata: metadata)
            case .failure(let error):
                metadata["error"] = "\(error)"
                logger.warning("failed hash kv request", metadata: metadata)
            }
        }
        if mismatches > 0 {
            logger.critical("initial corruption check found data inconsistency with peers; not serving", metadata: [
                "local-member-id": "\(memberID)", "mismatched-peers": "\(mismatches)",
            ])
            throw .inconsistent(member: memberID)
        }
        logger.info("initial corruption checking passed; no corruption", metadata: ["local-member-id": "\(memberID)"])
    }

    /// etcd `checkHashKV`, on the leader: the followers' hashes at the leader's revision, then
    /// the leader's own again after a linearizable read. The leader's data changed under the
    /// same revision, a follower compacted past the leader, or a follower with the leader's
    /// compaction point has another hash: the member at fault gets the CORRUPT alarm.
    func periodicCheck() async {
        guard loop.facts.withLock({ $0.role == .leader }) else { return }
        let first: PeerHashKV
        do {
            first = try await loop.hashKV(upTo: Revision(0))
        } catch {
            logger.warning(
                "failed to hash kv for peer corruption check", metadata: ["error": "\(error.rpcError.message)"])
            return
        }
        var answers: [(MemberID, PeerHashKV)] = []
        for (peer, outcome) in await peerHashes(at: first.revision) {
            switch outcome {
            case .success(let answer): answers.append((peer.id, answer))
            case .failure(let error):
                // Down, behind (a future revision) or compacted past it: nothing to compare.
                logger.debug("no hash from peer for corruption check", metadata: [
                    "remote-peer-id": "\(peer.id)", "error": "\(error)",
                ])
            }
        }
        let second: PeerHashKV
        do {
            try await loop.waitForReadIndex()
            second = try await loop.hashKV(upTo: Revision(0))
        } catch {
            return  // no longer leader, or stopping: the next leader checks
        }
        var metadata: Logger.Metadata = [
            "leader-revision": "\(first.revision)", "leader-hash": "\(first.hash)",
            "leader-compact-revision": "\(first.compactRevision)",
        ]
        let sameRange = second.revision == first.revision && second.compactRevision == first.compactRevision
        if second.hash != first.hash && sameRange {
            metadata["leader-hash-again"] = "\(second.hash)"
            logger.warning("found hash mismatch", metadata: metadata)
            await raiseCorruptAlarm(for: memberID)
            return
        }
        for (peer, answer) in answers {
            metadata["follower-id"] = "\(peer)"
            metadata["follower-hash"] = "\(answer.hash)"
            metadata["follower-compact-revision"] = "\(answer.compactRevision)"
            if answer.compactRevision > second.compactRevision {
                logger.warning(
                    "compact revision from follower must be less than or equal to leader's", metadata: metadata)
            } else if Self.verdict(local: first, peer: answer) == .differs {
                logger.warning("same compact revision then hashes must match", metadata: metadata)
            } else {
                continue
            }
            await raiseCorruptAlarm(for: peer)
            return
        }
    }

    /// Every other member's hash at `revision` over the peer port, or why there is none.
    private func peerHashes(at revision: Int64) async -> [(MemberRecord, Result<PeerHashKV, any Error>)] {
        var outcomes: [(MemberRecord, Result<PeerHashKV, any Error>)] = []
        for peer in loop.facts.withLock({ $0.membership.members }) where peer.id != memberID {
            guard let address = loop.peerAddresses(peer.peerURLs).first else { continue }
            do {
                outcomes.append((peer, .success(try await transport.hashKV(at: address, revision: revision, timeout: timeout))))
            } catch {
                outcomes.append((peer, .failure(error)))
            }
        }
        return outcomes
    }

    /// Proposes the CORRUPT alarm for `member` (once: an active alarm is not raised again).
    private func raiseCorruptAlarm(for member: MemberID) async {
        let raised = loop.facts.withLock { $0.membership.alarms.contains(ActiveAlarm(member: member, alarm: .corrupt)) }
        guard !raised else { return }
        var alarm = Etcdserverpb_AlarmRequest()
        alarm.action = .activate
        alarm.memberID = member.value
        alarm.alarm = .corrupt
        do {
            _ = try await loop.propose(.with { $0.alarm = alarm })
            logger.error("raised the CORRUPT alarm", metadata: ["member-id": "\(member)"])
        } catch {
            logger.warning("failed to raise the CORRUPT alarm", metadata: [
                "member-id": "\(member)", "error": "\(error.rpcError.message)",
            ])
        }
    }
}
