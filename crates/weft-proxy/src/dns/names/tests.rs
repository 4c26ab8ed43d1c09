use hickory_proto::rr::Name;

use super::*;
use crate::dns::tests::{service, transparent_config};

fn names() -> Names {
    Names::new(&transparent_config(vec![
        service("backend", Some("240.0.0.1")),
        service("pending", None),
    ]))
}

fn query(name: &str, kind: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    m.to_vec().unwrap()
}

fn local(reply: Reply) -> Message {
    match reply {
        Reply::Local(bytes) => Message::from_vec(&bytes).unwrap(),
        other => panic!("expected a local answer, got {other:?}"),
    }
}

#[test]
fn a_service_name_resolves_to_its_virtual_ip() {
    for name in ["backend.mesh.", "BACKEND.Mesh", "backend.mesh"] {
        let answer = local(names().reply(&query(name, RecordType::A)));
        assert_eq!(answer.metadata.id, 4242);
        assert_eq!(answer.metadata.message_type, MessageType::Response);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.metadata.authoritative);
        assert_eq!(answer.answers.len(), 1, "{name}");
        assert_eq!(
            answer.answers[0].data,
            RData::A(A(Ipv4Addr::new(240, 0, 0, 1)))
        );
        assert_eq!(answer.answers[0].ttl, TTL_SECONDS);
    }
}

#[test]
fn aaaa_for_a_service_is_an_empty_answer_not_an_error() {
    let answer = local(names().reply(&query("backend.mesh.", RecordType::AAAA)));
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
}

#[test]
fn unknown_or_deeper_names_under_the_suffix_do_not_exist() {
    for name in ["nope.mesh.", "a.backend.mesh.", "pending.mesh."] {
        let answer = local(names().reply(&query(name, RecordType::A)));
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
    }
    let suffix = local(names().reply(&query("mesh.", RecordType::A)));
    assert_eq!(suffix.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn other_names_are_forwarded() {
    for name in ["example.com.", "backendmesh.", "mesh.example.com."] {
        assert_eq!(
            names().reply(&query(name, RecordType::A)),
            Reply::Forward,
            "{name}"
        );
    }
}

#[test]
fn garbage_gets_a_format_error_or_nothing() {
    let answer = local(names().reply(&[0x12, 0x34, 0xff]));
    assert_eq!(answer.metadata.id, 0x1234);
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(names().reply(&[0x12]), Reply::Drop);
}
