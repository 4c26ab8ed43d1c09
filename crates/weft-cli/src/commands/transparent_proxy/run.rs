//! Installing, removing and checking the rules, in the IPv4 tables and,
//! where the host has them, the IPv6 ones: read what is there, render the
//! change, apply it in one `iptables-restore` per family, read it back.

use anyhow::{Context, bail};

use super::{
    CheckCommand, InstallCommand, UninstallCommand,
    iptables::Backend,
    rules::{self, Family, Installed, render},
};

/// One family's tables and what Weft has in them now.
struct Table {
    family: Family,
    backend: Backend,
    installed: Installed,
}

/// IPv4 always; IPv6 unless `skip_v6`, ip6tables is missing, or the
/// kernel has no IPv6 nat table (each said on stderr).
fn tables(skip_v6: bool) -> anyhow::Result<Vec<Table>> {
    let v4 = Backend::require_v4()?;
    let installed = Installed::parse(&v4.save_nat()?);
    let mut out = vec![Table {
        family: Family::V4,
        backend: v4,
        installed,
    }];
    if skip_v6 {
        return Ok(out);
    }
    match Backend::find(Family::V6) {
        None => eprintln!("warning: ip6tables not found: IPv6 traffic is left alone"),
        Some(v6) => match v6.save_nat() {
            Ok(text) => out.push(Table {
                family: Family::V6,
                backend: v6,
                installed: Installed::parse(&text),
            }),
            Err(e) => eprintln!("warning: IPv6 traffic is left alone: {e:#}"),
        },
    }
    Ok(out)
}

pub fn install(cmd: InstallCommand) -> anyhow::Result<()> {
    let InstallCommand::TransparentProxy(args) = cmd;
    let settings = args.rules.settings(args.proxy_uid)?;
    let tables = tables(args.rules.no_ipv6)?;
    if args.dry_run {
        for t in &tables {
            println!("# {}", t.family.name());
            print!("{}", render(&t.installed, Some(&settings.rules(t.family))));
        }
        return Ok(());
    }
    let pending: Vec<&Table> = tables
        .iter()
        .filter(|t| {
            !t.installed
                .differences(&settings.rules(t.family))
                .is_empty()
        })
        .collect();
    if pending.is_empty() {
        println!("transparent proxy rules already installed; nothing changed");
        return Ok(());
    }
    for (i, t) in pending.iter().enumerate() {
        let wanted = settings.rules(t.family);
        let applied = t
            .backend
            .restore(&render(&t.installed, Some(&wanted)))
            .and_then(|()| {
                let problems = Installed::parse(&t.backend.save_nat()?).differences(&wanted);
                if problems.is_empty() {
                    Ok(())
                } else {
                    bail!("read back differently:\n  {}", problems.join("\n  "))
                }
            });
        if let Err(e) = applied {
            // All families or none: an application must not leave over
            // the family that was left out.
            for done in &pending[..=i] {
                remove(done)?;
            }
            return Err(e).with_context(|| {
                format!(
                    "cannot install the {} rules; no transparent proxy rules are installed now",
                    t.family.name()
                )
            });
        }
    }
    let wanted = settings.rules(Family::V4);
    println!(
        "transparent proxy rules installed ({} rules in {} chains, {})",
        wanted.rules.len() + wanted.jumps.len(),
        wanted.chains.len(),
        tables
            .iter()
            .map(|t| t.family.name())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    Ok(())
}

/// Removes Weft's rules from one family's tables, as they are now.
fn remove(table: &Table) -> anyhow::Result<()> {
    let now = Installed::parse(&table.backend.save_nat()?);
    if now.is_empty() {
        return Ok(());
    }
    table.backend.restore(&render(&now, None))?;
    if !Installed::parse(&table.backend.save_nat()?).is_empty() {
        bail!(
            "some transparent proxy rules are still in the {} nat table after removal",
            table.family.name()
        );
    }
    Ok(())
}

pub fn uninstall(cmd: UninstallCommand) -> anyhow::Result<()> {
    let UninstallCommand::TransparentProxy(args) = cmd;
    let tables = tables(false)?;
    if args.dry_run {
        for t in &tables {
            println!("# {}", t.family.name());
            print!("{}", render(&t.installed, None));
        }
        return Ok(());
    }
    if tables.iter().all(|t| t.installed.is_empty()) {
        println!("no transparent proxy rules installed; nothing changed");
        return Ok(());
    }
    for t in &tables {
        remove(t)?;
    }
    println!("transparent proxy rules removed");
    Ok(())
}

pub fn check(cmd: CheckCommand) -> anyhow::Result<()> {
    let CheckCommand::TransparentProxy(args) = cmd;
    let tables = tables(args.rules.no_ipv6)?;
    if tables.iter().all(|t| t.installed.is_empty()) {
        bail!("transparent proxy rules are not installed");
    }
    let mut problems = Vec::new();
    for t in &tables {
        let found = match args.proxy_uid {
            Some(uid) => t
                .installed
                .differences(&args.rules.settings(uid)?.rules(t.family)),
            None if t.installed.is_empty() => vec!["not installed".to_owned()],
            None => structural_problems(&t.installed),
        };
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("{}: {p}", t.family.name())),
        );
    }
    if !problems.is_empty() {
        bail!(
            "transparent proxy rules are incomplete:\n  {}",
            problems.join("\n  ")
        );
    }
    for t in &tables {
        let i = &t.installed;
        println!(
            "{} transparent proxy rules installed: {} chains, {} rules, {} jumps",
            t.family.name(),
            i.chains.len(),
            i.rules.len(),
            i.jumps.len()
        );
        for rule in i.jumps.iter().chain(&i.rules) {
            println!("  -A {} {}", rule.chain, rule.spec);
        }
    }
    Ok(())
}

/// Without the settings, check that both directions are captured and
/// that each capture ends in a redirect.
fn structural_problems(installed: &Installed) -> Vec<String> {
    let mut problems = Vec::new();
    for (builtin, chain, redirect) in [
        ("PREROUTING", rules::INBOUND, rules::IN_REDIRECT),
        ("OUTPUT", rules::OUTPUT, rules::REDIRECT),
    ] {
        if !installed
            .jumps
            .iter()
            .any(|j| j.chain == builtin && j.spec.ends_with(&format!("-j {chain}")))
        {
            problems.push(format!("no jump from {builtin} to {chain}"));
        }
        if !installed
            .rules
            .iter()
            .any(|r| r.chain == redirect && r.spec.contains("-j REDIRECT"))
        {
            problems.push(format!("{redirect} does not redirect"));
        }
    }
    problems
}
