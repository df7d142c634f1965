// kvctl's output for the member, endpoint and move-leader commands against references from etcdctl 3.4.23's own
// code: expected strings were printed by etcdctl against a three-member cluster, or by the Go packages etcdctl
// vendors (time.Duration.String, go-humanize 1.0.0 Bytes, olekukonko/tablewriter 0.0.5 with etcdctl's settings).
// Also the hex member ID parser's errors (strconv.ParseUint) and the environment lines of `member add`.
import EtcdAPI
import Testing

@testable import kvctl

@Suite struct ClusterOutputTests {
    @Test(arguments: [
        (Int64(0), "0s"), (1, "1ns"), (812, "812ns"), (1000, "1µs"), (1500, "1.5µs"), (999_999, "999.999µs"),
        (1_000_000, "1ms"), (3_412_516, "3.412516ms"), (999_999_999, "999.999999ms"), (1_000_000_000, "1s"),
        (3_000_436_832, "3.000436832s"), (62_500_000_000, "1m2.5s"), (3_600_000_000_000, "1h0m0s"),
        (5_400_123_456_789, "1h30m0.123456789s"), (-1500, "-1.5µs"),
    ])
    func goDuration(nanoseconds: Int64, expected: String) {
        #expect(GoFormat.duration(nanoseconds: nanoseconds) == expected)
    }

    @Test(arguments: [
        (UInt64(0), "0 B"), (9, "9 B"), (10, "10 B"), (999, "999 B"), (1000, "1.0 kB"), (1049, "1.0 kB"),
        (1050, "1.1 kB"), (9950, "10 kB"), (10500, "10 kB"), (16384, "16 kB"), (2_100_000, "2.1 MB"),
        (999_999, "1000 kB"), (1_000_000, "1.0 MB"), (123_456_789_012, "124 GB"), (20_480_000, "20 MB"),
    ])
    func humanizeBytes(size: UInt64, expected: String) {
        #expect(GoFormat.bytes(size) == expected)
    }

    @Test func healthTableWrapsLongErrors() {
        let list = [
            EndpointHealth(endpoint: "https://127.0.0.1:2379", isHealthy: true, took: "1.2ms", error: ""),
            EndpointHealth(
                endpoint: "https://127.0.0.1:22379", isHealthy: false, took: "5.000123s",
                error: "rpc error: code = Unavailable desc = etcdserver: request timed out, possibly due to "
                    + "connection lost"),
            EndpointHealth(endpoint: "127.0.0.1:32379", isHealthy: false, took: "", error: "context deadline exceeded"),
        ]
        let table = ClusterRows.endpointHealth(list)
        #expect(
            TableWriter.render(header: table.header, rows: table.rows)
                == """
                +-------------------------+--------+-----------+--------------------------------+
                |        ENDPOINT         | HEALTH |   TOOK    |             ERROR              |
                +-------------------------+--------+-----------+--------------------------------+
                |  https://127.0.0.1:2379 |   true |     1.2ms |                                |
                | https://127.0.0.1:22379 |  false | 5.000123s |  rpc error: code = Unavailable |
                |                         |        |           |     desc = etcdserver: request |
                |                         |        |           |     timed out, possibly due to |
                |                         |        |           |                connection lost |
                |         127.0.0.1:32379 |  false |           |      context deadline exceeded |
                +-------------------------+--------+-----------+--------------------------------+

                """)
    }

    @Test func memberTableKeepsLongWordsWhole() {
        var started = Etcdserverpb_Member()
        started.id = 0x8e9e_05c5_2164_694d
        started.name = "n1"
        started.peerUrls = ["https://127.0.0.1:2380", "https://10.0.0.1:2380", "https://10.0.0.2:2380"]
        started.clientUrls = ["https://127.0.0.1:2379"]
        var learner = Etcdserverpb_Member()
        learner.id = 0x91bc_3c39_8fb3_c146
        learner.peerUrls = ["https://127.0.0.1:22380"]
        learner.isLearner = true
        var response = Etcdserverpb_MemberListResponse()
        response.members = [started, learner]
        let table = ClusterRows.memberList(response)
        let rule =
            "+------------------+-----------+------+----------------------------------------------------------------"
            + "----+------------------------+------------+\n"
        #expect(
            TableWriter.render(header: table.header, rows: table.rows)
                == rule
                + "|        ID        |  STATUS   | NAME |                             PEER ADDRS                    "
                + "         |      CLIENT ADDRS      | IS LEARNER |\n" + rule
                + "| 8e9e05c52164694d |   started |   n1 | https://127.0.0.1:2380,https://10.0.0.1:2380,https://10.0"
                + ".0.2:2380 | https://127.0.0.1:2379 |      false |\n"
                + "| 91bc3c398fb3c146 | unstarted |      |                                            https://127.0.0"
                + ".1:22380 |                        |       true |\n" + rule)
        #expect(
            SimplePrinter.rows(table.rows)
                == "8e9e05c52164694d, started, n1, https://127.0.0.1:2380,https://10.0.0.1:2380,https://10.0.0.2:2380, "
                + "https://127.0.0.1:2379, false\n91bc3c398fb3c146, unstarted, , https://127.0.0.1:22380, , true\n")
    }

    @Test func emptyTableHasHeaderOnly() {
        let table = ClusterRows.endpointHashKV([])
        #expect(
            TableWriter.render(header: table.header, rows: table.rows)
                == "+----------+------+\n| ENDPOINT | HASH |\n+----------+------+\n+----------+------+\n")
        #expect(JSONPrinter.encode([EndpointHashKV]()) == "[]")
    }

    /// A status response as a kvd member answered it; the expected strings are etcdctl's output for it.
    private func status(memberID: UInt64) -> Etcdserverpb_StatusResponse {
        var response = Etcdserverpb_StatusResponse()
        response.header.clusterID = 6_044_132_708_178_489_715
        response.header.memberID = memberID
        response.header.revision = 1
        response.header.raftTerm = 2
        response.version = "3.4.23"
        response.dbSize = 16384
        response.leader = 9_595_811_724_817_482_078
        response.raftIndex = 7
        response.raftTerm = 2
        response.raftAppliedIndex = 7
        response.dbSizeInUse = 16384
        return response
    }

    @Test func endpointStatusAsEtcdctl() {
        let list = [
            EndpointStatus(endpoint: "https://127.0.0.1:28938", response: status(memberID: 1_051_004_871_202_310_815)),
            EndpointStatus(endpoint: "https://127.0.0.1:27028", response: status(memberID: 9_595_811_724_817_482_078)),
        ]
        let table = ClusterRows.endpointStatus(list)
        #expect(
            SimplePrinter.rows(table.rows)
                == "https://127.0.0.1:28938, e95eb5ca5380a9f, 3.4.23, 16 kB, false, false, 2, 7, 7, \n"
                + "https://127.0.0.1:27028, 852b2bec4546415e, 3.4.23, 16 kB, true, false, 2, 7, 7, \n")
        let rule =
            "+-------------------------+------------------+---------+---------+-----------+------------+-----------"
            + "+------------+--------------------+--------+\n"
        #expect(
            TableWriter.render(header: table.header, rows: table.rows)
                == rule
                + "|        ENDPOINT         |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM "
                + "| RAFT INDEX | RAFT APPLIED INDEX | ERRORS |\n" + rule
                + "| https://127.0.0.1:28938 |  e95eb5ca5380a9f |  3.4.23 |   16 kB |     false |      false |         2 "
                + "|          7 |                  7 |        |\n"
                + "| https://127.0.0.1:27028 | 852b2bec4546415e |  3.4.23 |   16 kB |      true |      false |         2 "
                + "|          7 |                  7 |        |\n" + rule)
        #expect(
            JSONPrinter.encode(Array(list.prefix(1)))
                == #"[{"Endpoint":"https://127.0.0.1:28938","Status":{"header":{"cluster_id":6044132708178489715,"#
                + #""member_id":1051004871202310815,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":16384,"#
                + #""leader":9595811724817482078,"raftIndex":7,"raftTerm":2,"raftAppliedIndex":7,"dbSizeInUse":16384}}]"#
        )
    }

    @Test func endpointHealthAsEtcdctl() {
        let list = [
            EndpointHealth(endpoint: "https://127.0.0.1:28938", isHealthy: true, took: "18.409519ms", error: ""),
            EndpointHealth(
                endpoint: "https://127.0.0.1:26590", isHealthy: false, took: "3.000359167s",
                error: "context deadline exceeded"),
        ]
        #expect(
            JSONPrinter.encode(list)
                == #"[{"endpoint":"https://127.0.0.1:28938","health":true,"took":"18.409519ms"},"#
                + #"{"endpoint":"https://127.0.0.1:26590","health":false,"took":"3.000359167s","#
                + #""error":"context deadline exceeded"}]"#)
        #expect(
            SimplePrinter.healthLines(list)
                == "https://127.0.0.1:28938 is healthy: successfully committed proposal: took = 18.409519ms\n"
                + "https://127.0.0.1:26590 is unhealthy: failed to commit proposal: context deadline exceeded\n")
    }

    private func members() -> [Etcdserverpb_Member] {
        var n1 = Etcdserverpb_Member()
        n1.id = 1_051_004_871_202_310_815
        n1.name = "n1"
        n1.peerUrls = ["https://127.0.0.1:21436"]
        n1.clientUrls = ["https://127.0.0.1:28938"]
        var n4 = Etcdserverpb_Member()
        n4.id = 0x91bc_3c39_8fb3_c146
        n4.peerUrls = ["https://127.0.0.1:22380"]
        n4.isLearner = true
        return [n1, n4]
    }

    @Test func memberListAsEtcdctl() {
        var header = Etcdserverpb_ResponseHeader()
        header.clusterID = 6_044_132_708_178_489_715
        header.memberID = 9_595_811_724_817_482_078
        header.revision = 1
        header.raftTerm = 2
        #expect(
            JSONPrinter.encode(header: header, members: members())
                == #"{"header":{"cluster_id":6044132708178489715,"member_id":9595811724817482078,"revision":1,"#
                + #""raft_term":2},"members":[{"ID":1051004871202310815,"name":"n1","#
                + #""peerURLs":["https://127.0.0.1:21436"],"clientURLs":["https://127.0.0.1:28938"]},"#
                + #"{"ID":10501334649042878790,"peerURLs":["https://127.0.0.1:22380"],"isLearner":true}]}"#)
        #expect(JSONPrinter.encode(header: nil, members: []) == "{}")
        #expect(
            FieldsPrinter.members(members())
                == "\"ID\" : 1051004871202310815\n\"Name\" : \"n1\"\n\"PeerURL\" : \"https://127.0.0.1:21436\"\n"
                + "\"ClientURL\" : \"https://127.0.0.1:28938\"\n\"IsLearner\" : false\n\n"
                + "\"ID\" : 10501334649042878790\n\"Name\" : \"\"\n\"PeerURL\" : \"https://127.0.0.1:22380\"\n"
                + "\"IsLearner\" : true\n\n")
    }

    @Test func memberAddLinesAsEtcdctl() {
        var response = Etcdserverpb_MemberAddResponse()
        response.header.clusterID = 0x53e0_ed25_d6c7_c873
        response.member = members()[1]
        response.members = members()
        // %16x pads with spaces: a 15-digit ID gets one.
        #expect(
            SimplePrinter.memberChange(0x0e95_eb5c_a538_0a9f, "removed from", response.header)
                == "Member  e95eb5ca5380a9f removed from cluster 53e0ed25d6c7c873\n")
        #expect(
            MemberCommand.newMemberEnvironment(response, name: "n4", peerURLs: "https://127.0.0.1:22380")
                == "\nETCD_NAME=\"n4\"\n"
                + "ETCD_INITIAL_CLUSTER=\"n1=https://127.0.0.1:21436,n4=https://127.0.0.1:22380\"\n"
                + "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"https://127.0.0.1:22380\"\n"
                + "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
    }

    @Test(arguments: [
        ("e95eb5ca5380a9f", UInt64(0x0e95_eb5c_a538_0a9f), nil),
        ("FFFFFFFFFFFFFFFF", UInt64.max, nil),
        ("zz", 0, #"strconv.ParseUint: parsing "zz": invalid syntax"#),
        ("0x12", 0, #"strconv.ParseUint: parsing "0x12": invalid syntax"#),
        ("-1", 0, #"strconv.ParseUint: parsing "-1": invalid syntax"#),
        ("", 0, #"strconv.ParseUint: parsing "": invalid syntax"#),
        ("1ffffffffffffffff", 0, #"strconv.ParseUint: parsing "1ffffffffffffffff": value out of range"#),
    ] as [(String, UInt64, String?)])
    func hexMemberID(text: String, expected: UInt64, expectedError: String?) {
        do {
            let id = try GoParse.uint64(text, base: 16)
            #expect(expectedError == nil)
            #expect(id == expected)
        } catch {
            #expect(error.message == expectedError)
        }
    }
}
