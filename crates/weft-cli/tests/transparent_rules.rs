//! `weft install|check|uninstall transparent-proxy` against real iptables,
//! in a network namespace of its own. Needs root: fails, never skips,
//! without it (see `weft_testkit::netns::require`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Output;

use weft_testkit::netns::{self, Network};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn nat(net: &Network, host: &netns::Host) -> String {
    let out = net
        .exec(host, None, &["iptables-save", "-t", "nat"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn nat6(net: &Network, host: &netns::Host) -> String {
    let out = net
        .exec(host, None, &["ip6tables-save", "-t", "nat"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn weft(net: &Network, host: &netns::Host, args: &[&str]) -> Output {
    let mut argv = vec![WEFT];
    argv.extend(args);
    net.exec(host, None, &argv).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_is_idempotent_and_uninstall_removes_exactly_what_it_added() {
    netns::require();
    let net = Network::create(1).await.unwrap();
    let host = net.host(1);
    // Someone else's rule, which must survive everything below.
    let foreign = net
        .exec(
            host,
            None,
            &[
                "iptables",
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-d",
                "192.0.2.0/24",
                "-j",
                "RETURN",
            ],
        )
        .await
        .unwrap();
    assert!(foreign.status.success(), "{}", text(&foreign));
    let before = nat(&net, host).await;

    let check = weft(&net, host, &["check", "transparent-proxy"]).await;
    assert!(!check.status.success());
    assert!(text(&check).contains("not installed"), "{}", text(&check));

    let settings = [
        "--proxy-uid",
        "1337",
        "--redirect-dns",
        "--exclude-inbound-ports",
        "22,2222",
        "--exclude-outbound-ports",
        "5432",
    ];
    let install = [&["install", "transparent-proxy"][..], &settings].concat();
    // --dry-run prints the rules and changes nothing.
    let dry = weft(&net, host, &[&install[..], &["--dry-run"]].concat()).await;
    assert!(dry.status.success(), "{}", text(&dry));
    let printed = String::from_utf8_lossy(&dry.stdout);
    for rule in [
        "-A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A WEFT_INBOUND -p tcp -m tcp --dport 2222 -j RETURN",
        "-A WEFT_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN",
        "-A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
        "-A WEFT_DNS_REDIRECT -p udp -j REDIRECT --to-ports 15053",
    ] {
        assert!(printed.contains(rule), "{rule} missing from:\n{printed}");
    }
    assert_eq!(
        nat(&net, host)
            .await
            .lines()
            .filter(|l| l.contains("WEFT"))
            .count(),
        0
    );

    let first = weft(&net, host, &install).await;
    assert!(first.status.success(), "{}", text(&first));
    let installed = nat(&net, host).await;
    assert!(
        installed.contains(
            "-A OUTPUT -p tcp -m comment --comment weft-transparent-proxy -j WEFT_OUTPUT"
        ),
        "{installed}"
    );
    assert!(
        installed.contains(
            "-A PREROUTING -p tcp -m comment --comment weft-transparent-proxy -j WEFT_INBOUND"
        ),
        "{installed}"
    );

    let check = [&["check", "transparent-proxy"][..], &settings].concat();
    let exact = weft(&net, host, &check).await;
    assert!(exact.status.success(), "{}", text(&exact));
    let other_uid = weft(
        &net,
        host,
        &["check", "transparent-proxy", "--proxy-uid", "1000"],
    )
    .await;
    assert!(!other_uid.status.success());
    assert!(
        text(&other_uid).contains("--uid-owner 1000"),
        "{}",
        text(&other_uid)
    );

    // Again: nothing changes, nothing is doubled.
    let second = weft(&net, host, &install).await;
    assert!(
        text(&second).contains("already installed"),
        "{}",
        text(&second)
    );
    assert_eq!(
        nat(&net, host)
            .await
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        installed
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
    );

    // Other settings replace the rules in one step: DNS redirection goes.
    let changed = weft(
        &net,
        host,
        &["install", "transparent-proxy", "--proxy-uid", "1338"],
    )
    .await;
    assert!(changed.status.success(), "{}", text(&changed));
    let now = nat(&net, host).await;
    assert!(
        now.contains("--uid-owner 1338") && !now.contains("--uid-owner 1337"),
        "{now}"
    );
    assert!(!now.contains("WEFT_DNS_REDIRECT"), "{now}");
    assert_eq!(now.matches("-j WEFT_OUTPUT").count(), 1, "{now}");

    // The same rules guard IPv6, with its own loopback.
    let v6 = nat6(&net, host).await;
    assert!(v6.contains("-A WEFT_OUTPUT -d ::1/128 -j RETURN"), "{v6}");
    assert!(v6.contains("--uid-owner 1338"), "{v6}");

    let removed = weft(&net, host, &["uninstall", "transparent-proxy"]).await;
    assert!(removed.status.success(), "{}", text(&removed));
    let after = nat(&net, host).await;
    let rules = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        rules(&after),
        rules(&before),
        "the table is as it was before install"
    );
    assert!(!nat6(&net, host).await.contains("WEFT"));
    let again = weft(&net, host, &["uninstall", "transparent-proxy"]).await;
    assert!(text(&again).contains("nothing changed"), "{}", text(&again));
    assert!(
        !weft(&net, host, &["check", "transparent-proxy"])
            .await
            .status
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_ports_are_refused_with_the_flags_named() {
    netns::require();
    let net = Network::create(1).await.unwrap();
    for (flags, error) in [
        (
            ["--redirect-outbound-port", "15006"],
            "--redirect-inbound-port and --redirect-outbound-port are both 15006",
        ),
        (
            ["--exclude-inbound-ports", "22,99999"],
            "\"99999\" is not a port",
        ),
    ] {
        let install = ["install", "transparent-proxy", "--proxy-uid", "1337"];
        let out = weft(&net, net.host(1), &[&install[..], &flags[..]].concat()).await;
        assert!(!out.status.success());
        assert!(text(&out).contains(error), "{}", text(&out));
    }
    assert!(
        nat(&net, net.host(1))
            .await
            .lines()
            .all(|l| !l.contains("WEFT"))
    );
}
