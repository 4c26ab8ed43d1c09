//! The transparent-proxy rule set as data: which chains Weft owns in the
//! `nat` table, what goes in them, and how the built-in chains jump to them.
//! Rendering to `iptables-restore` input lives here too, so what `--dry-run`
//! prints is exactly what is applied.
//!
//! Every rule Weft adds to a built-in chain carries [`MARKER`] as a
//! comment, and every chain it owns starts with `WEFT_`: uninstall removes
//! those and nothing else.

use std::fmt::Write as _;

/// The comment on every jump Weft adds to a built-in chain.
pub const MARKER: &str = "weft-transparent-proxy";
/// Every chain Weft owns starts with this.
pub const CHAIN_PREFIX: &str = "WEFT_";

/// TCP arriving from the network, before routing.
pub const INBOUND: &str = "WEFT_INBOUND";
/// Sends inbound TCP to the proxy's inbound redirect port.
pub const IN_REDIRECT: &str = "WEFT_IN_REDIRECT";
/// TCP (and with DNS redirection, DNS) sent by local processes.
pub const OUTPUT: &str = "WEFT_OUTPUT";
/// Sends outbound TCP to the proxy's outbound redirect port.
pub const REDIRECT: &str = "WEFT_REDIRECT";
/// Sends DNS queries to the proxy's DNS port.
pub const DNS_REDIRECT: &str = "WEFT_DNS_REDIRECT";

/// Which table family a rule set is for: `iptables` or `ip6tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The addresses that are never captured on the way out: what an
    /// application sends to loopback stays local (its own services, the
    /// proxy's declared outbound listeners, the proxy's admin port).
    fn loopback(self) -> &'static str {
        match self {
            Family::V4 => "127.0.0.0/8",
            Family::V6 => "::1/128",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// What `weft install transparent-proxy` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The proxy's own traffic is never redirected (it would loop).
    pub proxy_uid: u32,
    pub inbound_port: u16,
    pub outbound_port: u16,
    /// `Some(port)` redirects local DNS queries (UDP and TCP port 53) there.
    pub dns_port: Option<u16>,
    pub exclude_inbound_ports: Vec<u16>,
    pub exclude_outbound_ports: Vec<u16>,
}

/// One rule: the chain it is appended to and its match and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub spec: String,
}

impl Rule {
    fn new(chain: &str, spec: impl Into<String>) -> Self {
        Self {
            chain: chain.to_owned(),
            spec: spec.into(),
        }
    }
}

/// Every chain and rule one installation consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// Weft's own chains, created (or emptied) before their rules are added.
    pub chains: Vec<&'static str>,
    /// Rules in Weft's chains.
    pub rules: Vec<Rule>,
    /// Jumps from built-in chains into Weft's, each carrying [`MARKER`].
    pub jumps: Vec<Rule>,
}

impl Settings {
    /// Checks what clap cannot: the redirect ports must differ, or one
    /// listener would receive two kinds of traffic.
    pub fn validate(&self) -> Result<(), String> {
        let mut named = vec![
            ("--redirect-inbound-port", self.inbound_port),
            ("--redirect-outbound-port", self.outbound_port),
        ];
        if let Some(dns) = self.dns_port {
            named.push(("--redirect-dns-port", dns));
        }
        for (i, (a, pa)) in named.iter().enumerate() {
            if let Some((b, _)) = named[i + 1..].iter().find(|(_, pb)| pb == pa) {
                return Err(format!(
                    "{a} and {b} are both {pa}; each needs its own port"
                ));
            }
        }
        Ok(())
    }

    /// The rule set these settings ask for, in `family`'s tables.
    pub fn rules(&self, family: Family) -> RuleSet {
        let mut chains = vec![INBOUND, IN_REDIRECT, OUTPUT, REDIRECT];
        let mut rules = Vec::new();

        // Inbound: everything TCP but the excluded ports goes to the proxy,
        // which hands it to the application through its inbound path.
        for port in &self.exclude_inbound_ports {
            rules.push(Rule::new(
                INBOUND,
                format!("-p tcp -m tcp --dport {port} -j RETURN"),
            ));
        }
        rules.push(Rule::new(INBOUND, format!("-p tcp -j {IN_REDIRECT}")));
        rules.push(Rule::new(
            IN_REDIRECT,
            format!("-p tcp -j REDIRECT --to-ports {}", self.inbound_port),
        ));

        // Outbound: the proxy's own connections first, or they would loop
        // back into it; then DNS, which goes to the proxy even for loopback
        // resolvers (127.0.0.53); then what stays local or is excluded.
        rules.push(Rule::new(
            OUTPUT,
            format!("-m owner --uid-owner {} -j RETURN", self.proxy_uid),
        ));
        if let Some(dns) = self.dns_port {
            chains.push(DNS_REDIRECT);
            for proto in ["udp", "tcp"] {
                rules.push(Rule::new(
                    OUTPUT,
                    format!("-p {proto} -m {proto} --dport 53 -j {DNS_REDIRECT}"),
                ));
                rules.push(Rule::new(
                    DNS_REDIRECT,
                    format!("-p {proto} -j REDIRECT --to-ports {dns}"),
                ));
            }
        }
        rules.push(Rule::new(
            OUTPUT,
            format!("-d {} -j RETURN", family.loopback()),
        ));
        for port in &self.exclude_outbound_ports {
            rules.push(Rule::new(
                OUTPUT,
                format!("-p tcp -m tcp --dport {port} -j RETURN"),
            ));
        }
        rules.push(Rule::new(OUTPUT, format!("-p tcp -j {REDIRECT}")));
        rules.push(Rule::new(
            REDIRECT,
            format!("-p tcp -j REDIRECT --to-ports {}", self.outbound_port),
        ));

        let mut jumps = vec![
            Rule::new("PREROUTING", jump_spec("tcp", "", INBOUND)),
            Rule::new("OUTPUT", jump_spec("tcp", "", OUTPUT)),
        ];
        if self.dns_port.is_some() {
            // TCP DNS already enters through the TCP jump.
            jumps.push(Rule::new(
                "OUTPUT",
                jump_spec("udp", "-m udp --dport 53 ", OUTPUT),
            ));
        }
        RuleSet {
            chains,
            rules,
            jumps,
        }
    }
}

/// A jump into one of Weft's chains. Every spec here is written the way
/// `iptables-save` prints it back (`-m tcp` before `--dport`), so that an
/// installation can be compared with what the table holds.
fn jump_spec(proto: &str, matches: &str, chain: &str) -> String {
    format!("-p {proto} {matches}-m comment --comment {MARKER} -j {chain}")
}

/// What of an earlier installation is in the `nat` table now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Weft's chains (`:WEFT_...` lines).
    pub chains: Vec<String>,
    /// Rules in Weft's chains.
    pub rules: Vec<Rule>,
    /// Marked jumps in built-in chains, as `iptables-save` prints them.
    pub jumps: Vec<Rule>,
}

impl Installed {
    /// Reads the `nat` table from `iptables-save` output.
    pub fn parse(save: &str) -> Self {
        let mut installed = Installed::default();
        let mut in_nat = false;
        for line in save.lines().map(str::trim) {
            if let Some(table) = line.strip_prefix('*') {
                in_nat = table == "nat";
                continue;
            }
            if !in_nat {
                continue;
            }
            if let Some(chain) = line.strip_prefix(':') {
                let name = chain.split_whitespace().next().unwrap_or_default();
                if name.starts_with(CHAIN_PREFIX) {
                    installed.chains.push(name.to_owned());
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let (chain, spec) = rule.split_once(' ').unwrap_or((rule, ""));
                let rule = Rule::new(chain, spec);
                if chain.starts_with(CHAIN_PREFIX) {
                    installed.rules.push(rule);
                } else if spec.contains(MARKER) {
                    installed.jumps.push(rule);
                }
            }
        }
        installed
    }

    pub fn is_empty(&self) -> bool {
        self.chains.is_empty() && self.jumps.is_empty()
    }

    /// What is missing or extra compared with `wanted`, one line each; empty
    /// when the table holds exactly that rule set.
    pub fn differences(&self, wanted: &RuleSet) -> Vec<String> {
        let mut problems = Vec::new();
        for chain in &wanted.chains {
            if !self.chains.iter().any(|c| c == chain) {
                problems.push(format!("chain {chain} is missing"));
            }
        }
        for chain in &self.chains {
            if !wanted.chains.contains(&chain.as_str()) {
                problems.push(format!("chain {chain} is not part of this installation"));
            }
        }
        for (kind, have, want) in [
            ("rule", &self.rules, &wanted.rules),
            ("jump", &self.jumps, &wanted.jumps),
        ] {
            for rule in want.iter().filter(|r| !have.contains(r)) {
                problems.push(format!("{kind} missing: -A {} {}", rule.chain, rule.spec));
            }
            for rule in have.iter().filter(|r| !want.contains(r)) {
                problems.push(format!(
                    "{kind} not expected: -A {} {}",
                    rule.chain, rule.spec
                ));
            }
        }
        if problems.is_empty() {
            // iptables-save lists rules chain by chain, so order only
            // matters within a chain.
            for chain in &wanted.chains {
                let in_chain = |rules: &[Rule]| {
                    rules
                        .iter()
                        .filter(|r| r.chain == *chain)
                        .cloned()
                        .collect::<Vec<_>>()
                };
                if in_chain(&self.rules) != in_chain(&wanted.rules) {
                    problems.push(format!("the rules of {chain} are in a different order"));
                }
            }
        }
        problems
    }
}

/// `iptables-restore --noflush` input that replaces whatever `installed`
/// holds with `wanted` (or only removes it, for `None`) in one transaction.
pub fn render(installed: &Installed, wanted: Option<&RuleSet>) -> String {
    let mut out = String::from("*nat\n");
    let wanted_chains: Vec<&str> = wanted.map(|w| w.chains.clone()).unwrap_or_default();
    // Declaring a chain creates it, or empties it if it exists.
    for chain in installed
        .chains
        .iter()
        .map(String::as_str)
        .filter(|c| !wanted_chains.contains(c))
        .chain(wanted_chains.iter().copied())
    {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    for jump in &installed.jumps {
        let _ = writeln!(out, "-D {} {}", jump.chain, jump.spec);
    }
    for chain in installed
        .chains
        .iter()
        .filter(|c| !wanted_chains.contains(&c.as_str()))
    {
        let _ = writeln!(out, "-X {chain}");
    }
    if let Some(wanted) = wanted {
        for rule in wanted.rules.iter().chain(&wanted.jumps) {
            let _ = writeln!(out, "-A {} {}", rule.chain, rule.spec);
        }
    }
    out.push_str("COMMIT\n");
    out
}

#[cfg(test)]
mod tests;
