use super::*;

const OWN_SHA: &str = "aaaa";

fn build(version: &str, sha: &str) -> Build {
    Build { version: Some(version.into()), sha256: sha.into() }
}

/// A machine with nothing of marmot on it, installing from `./marmotd` with a `marmotctl`
/// beside it.
fn fresh() -> Facts {
    Facts {
        exe: PathBuf::from("/home/me/marmotd"),
        own: build("0.2.0+20261130000000", OWN_SHA),
        packaged: false,
        marmotctl: Some(PathBuf::from("/home/me/marmotctl")),
        local_marmotctl: false,
        user_exists: false,
        coordinator: RoleFacts::default(),
        worker: RoleFacts::default(),
    }
}

fn docs() -> Docs {
    vec![
        (PathBuf::from("/usr/local/share/bash-completion/completions/marmotd"), b"b".to_vec()),
        (PathBuf::from("/usr/local/share/man/man1/marmotd.1"), b"m".to_vec()),
    ]
}

fn worker(token: Option<&str>) -> Settings {
    Settings::Worker {
        coordinator: "192.168.1.25:7070".into(),
        token: token.map(Into::into),
        name: Some("attic".into()),
        slots: None,
    }
}

const TOKEN: &str = "marmot1-abababababababababababababababababababababababababababababababab-cd";

fn lines(steps: &[Step]) -> Vec<String> {
    steps.iter().map(|s| s.to_string()).collect()
}

fn has(steps: &[Step], wanted: &str) -> bool {
    lines(steps).iter().any(|l| l == wanted)
}

#[test]
fn a_fresh_worker_gets_user_binary_settings_unit_docs_and_a_start() {
    let steps = install(&worker(Some(TOKEN)), &fresh(), &docs()).unwrap();
    let want = [
        "useradd --system --user-group --home-dir /var/lib/marmot --shell /usr/sbin/nologin marmot",
        "install -d -m 0750 -o marmot -g marmot /var/lib/marmot",
        "install -d -m 0700 -o marmot -g marmot /var/lib/marmot/worker",
        "install -d -m 0700 -o marmot -g marmot /var/lib/marmot/worker/bin",
        "install -m 0755 -o marmot -g marmot /home/me/marmotd /var/lib/marmot/worker/bin/marmotd",
        "install -d -m 0755 /etc/marmot",
        "write /etc/marmot/worker.env (0600):\n    \
         # Written by `marmotd install worker`: run it again to change these settings.\n    \
         MARMOT_COORDINATOR=192.168.1.25:7070\n    \
         # The join token is needed until the worker has joined once.\n    \
         MARMOT_TOKEN=<the join token>\n    \
         MARMOT_WORKER_FLAGS=--name attic",
        "write /etc/systemd/system/marmotd-worker.service (0644)",
        "write marmotd's shell completions and man pages (2 files under /usr/local/share)",
        "systemctl daemon-reload",
        "systemctl enable marmotd-worker.service && systemctl restart marmotd-worker.service   \
         # waits for READY=1",
    ];
    assert_eq!(lines(&steps), want);
    // The real file has the token; only its display hides it.
    let Step::Write { contents, .. } = &steps[6] else { panic!("{:?}", steps[6]) };
    assert!(contents.contains(&format!("MARMOT_TOKEN={TOKEN}\n")), "{contents}");
    let Step::Write { contents, .. } = &steps[7] else { panic!("{:?}", steps[7]) };
    assert_eq!(contents, layout::unit_text(Role::Worker));
    // A worker gets no marmotctl.
    assert!(!lines(&steps).iter().any(|l| l.contains("marmotctl")));
}

#[test]
fn a_coordinator_also_gets_marmotctl_with_its_docs() {
    let settings = Settings::Coordinator { sans: vec!["nas.lan".into()] };
    let steps = install(&settings, &fresh(), &docs()).unwrap();
    for want in [
        "install -m 0755 /home/me/marmotctl /usr/local/bin/marmotctl",
        "/usr/local/bin/marmotctl completions bash > \
         /usr/local/share/bash-completion/completions/marmotctl",
        "/usr/local/bin/marmotctl completions zsh > /usr/local/share/zsh/site-functions/_marmotctl",
        "/usr/local/bin/marmotctl completions fish > \
         /usr/local/share/fish/vendor_completions.d/marmotctl.fish",
        "/usr/local/bin/marmotctl man-pages /usr/local/share/man/man1",
        "write /etc/systemd/system/marmotd-coordinator.service (0644)",
        "install -m 0755 -o marmot -g marmot /home/me/marmotd \
         /var/lib/marmot/coordinator/bin/marmotd",
    ] {
        assert!(has(&steps, want), "{want}\nin {:#?}", lines(&steps));
    }
    let last = lines(&steps).pop().unwrap();
    assert!(last.starts_with("systemctl enable marmotd-coordinator.service && systemctl restart"));
    // Without a marmotctl beside marmotd, none is installed.
    let facts = Facts { marmotctl: None, ..fresh() };
    let steps = install(&settings, &facts, &docs()).unwrap();
    assert!(!lines(&steps).iter().any(|l| l.contains("marmotctl")), "{:#?}", lines(&steps));
}

/// The machine after a first install of `settings`, running.
fn installed(settings: &Settings, facts: Facts) -> Facts {
    let steps = install(settings, &facts, &docs()).unwrap();
    let env = steps.iter().find_map(|s| match s {
        Step::Write { path, contents, .. } if path.ends_with("worker.env") => Some(contents),
        Step::Write { path, contents, .. } if path.ends_with("coordinator.env") => Some(contents),
        _ => None,
    });
    let here = RoleFacts {
        binary: Some(facts.own.clone()),
        env: env.cloned(),
        unit: Some(layout::unit_text(settings.role()).to_string()),
        packaged_unit: false,
        active: true,
        joined: true,
    };
    let mut after = Facts { user_exists: true, ..facts };
    match settings.role() {
        Role::Coordinator => after.coordinator = here,
        Role::Worker => after.worker = here,
    }
    after
}

#[test]
fn installing_again_changes_only_what_differs_and_keeps_the_token() {
    let facts = installed(&worker(Some(TOKEN)), fresh());
    // The same command again: nothing to write, nothing to restart.
    let steps = install(&worker(Some(TOKEN)), &facts, &docs()).unwrap();
    assert!(!lines(&steps).iter().any(|l| l.starts_with("useradd")));
    assert!(!steps.iter().any(|s| matches!(s, Step::Copy { .. })), "{:#?}", lines(&steps));
    assert!(!steps.iter().any(|s| matches!(s, Step::Write { .. })), "{:#?}", lines(&steps));
    assert_eq!(
        steps.last(),
        Some(&Step::Start { unit: layout::unit(Role::Worker), restart: false })
    );
    assert!(has(
        &steps,
        "# keep the worker's binary /var/lib/marmot/worker/bin/marmotd: already this build"
    ));
    assert!(has(&steps, "# keep /etc/marmot/worker.env: already these settings"));

    // New settings without the token: the token is kept, the service restarted.
    let renamed = Settings::Worker {
        coordinator: "192.168.1.26".into(),
        token: None,
        name: None,
        slots: Some(2),
    };
    let steps = install(&renamed, &facts, &docs()).unwrap();
    let env = steps
        .iter()
        .find_map(|s| match s {
            Step::Write { contents, path, .. } if path.ends_with("worker.env") => Some(contents),
            _ => None,
        })
        .unwrap();
    assert!(env.contains(&format!("MARMOT_TOKEN={TOKEN}\n")), "{env}");
    assert!(env.contains("MARMOT_COORDINATOR=192.168.1.26\n"), "{env}");
    assert!(env.contains("MARMOT_WORKER_FLAGS=--slots 2\n"), "{env}");
    assert_eq!(
        steps.last(),
        Some(&Step::Start { unit: layout::unit(Role::Worker), restart: true })
    );

    // A stopped service is started even when nothing changed.
    let mut stopped = facts.clone();
    stopped.worker.active = false;
    let steps = install(&worker(Some(TOKEN)), &stopped, &docs()).unwrap();
    assert_eq!(
        steps.last(),
        Some(&Step::Start { unit: layout::unit(Role::Worker), restart: true })
    );
}

#[test]
fn a_worker_needs_a_token_until_it_has_joined() {
    let e = install(&worker(None), &fresh(), &docs()).unwrap_err();
    assert!(e.0.contains("--token") && e.0.contains("marmotctl join-token"), "{e}");
    // Joined, with the token dropped from its settings: none needed.
    let mut facts = fresh();
    facts.worker.joined = true;
    let steps = install(&worker(None), &facts, &docs()).unwrap();
    let env = steps.iter().find_map(|s| match s {
        Step::Write { contents, path, .. } if path.ends_with("worker.env") => Some(contents),
        _ => None,
    });
    assert!(!env.unwrap().contains("MARMOT_TOKEN"));
    // The package's template holds a placeholder, not a token: still needed.
    let mut facts = fresh();
    facts.worker.env = Some(include_str!("../../../../systemd/worker.env").to_string());
    let e = install(&worker(None), &facts, &docs()).unwrap_err();
    assert!(e.0.contains("--token"), "{e}");
    // A value that would break the unit's command line is refused, one line.
    let bad = Settings::Worker {
        coordinator: "h".into(),
        token: Some(TOKEN.into()),
        name: Some("my laptop".into()),
        slots: None,
    };
    let e = install(&bad, &fresh(), &docs()).unwrap_err();
    assert!(e.0.starts_with("--name 'my laptop'"), "{e}");
}

#[test]
fn binaries_are_never_downgraded() {
    let own = build("0.2.0+20261130000000", OWN_SHA);
    assert_eq!(choose_binary(&own, None), BinaryChoice::Copy);
    assert_eq!(choose_binary(&own, Some(&own.clone())), BinaryChoice::Same);
    let older = build("0.1.0+20261130000000", "bbbb");
    assert_eq!(choose_binary(&own, Some(&older)), BinaryChoice::Copy);
    let newer = build("0.2.0+20261201000000", "cccc");
    assert_eq!(
        choose_binary(&own, Some(&newer)),
        BinaryChoice::Newer("0.2.0+20261201000000".into())
    );
    // Same version, another build (bytes differ): replaced.
    let rebuilt = build("0.2.0+20261130000000", "dddd");
    assert_eq!(choose_binary(&own, Some(&rebuilt)), BinaryChoice::Copy);
    // A damaged file, or one without a stamp: replaced.
    let damaged = Build { version: None, sha256: "eeee".into() };
    assert_eq!(choose_binary(&own, Some(&damaged)), BinaryChoice::Copy);

    let mut facts = fresh();
    facts.worker.binary = Some(newer);
    let steps = install(&worker(Some(TOKEN)), &facts, &docs()).unwrap();
    assert!(!steps.iter().any(|s| matches!(s, Step::Copy { .. })), "{:#?}", lines(&steps));
    let keep = lines(&steps).into_iter().find(|l| l.starts_with("# keep the worker's binary"));
    assert!(keep.unwrap().contains("0.2.0+20261201000000, newer than this 0.2.0+20261130000000"));
}

#[test]
fn with_the_package_only_the_settings_and_the_binary_copy_are_written() {
    let facts = Facts {
        exe: PathBuf::from("/usr/bin/marmotd"),
        packaged: true,
        marmotctl: None,
        user_exists: true,
        ..fresh()
    };
    let settings = Settings::Coordinator { sans: vec![] };
    let steps = install(&settings, &facts, &docs()).unwrap();
    let text = lines(&steps).join("\n");
    assert!(!text.contains("/etc/systemd/system"), "{text}");
    assert!(!text.contains("completions"), "{text}");
    assert!(!text.contains("useradd"), "{text}");
    assert!(text.contains("install -m 0755 -o marmot -g marmot /usr/bin/marmotd"), "{text}");
    assert!(text.contains("write /etc/marmot/coordinator.env (0600)"), "{text}");
}

#[test]
fn uninstall_removes_what_install_wrote_and_keeps_state_unless_purged() {
    let settings = Settings::Coordinator { sans: vec![] };
    let mut facts = installed(&settings, fresh());
    facts.local_marmotctl = true;
    let facts = installed(&worker(Some(TOKEN)), facts);
    let steps = uninstall(None, false, &facts, &docs()).unwrap();
    let text = lines(&steps).join("\n");
    for want in [
        "systemctl disable --now marmotd-coordinator.service",
        "rm -f /etc/systemd/system/marmotd-coordinator.service",
        "rm -f /etc/marmot/coordinator.env",
        "rm -rf /var/lib/marmot/coordinator/bin",
        "systemctl disable --now marmotd-worker.service",
        "rm -f /etc/systemd/system/marmotd-worker.service",
        "rm -f /etc/marmot/worker.env",
        "rm -rf /var/lib/marmot/worker/bin",
        "rm -f /usr/local/bin/marmotctl",
        "rm -f /usr/local/share/man/man1/marmotctl*.1",
        "rm -f /usr/local/share/bash-completion/completions/marmotd",
        "rm -f /usr/local/share/man/man1/marmotd.1",
    ] {
        assert!(text.lines().any(|l| l == want), "{want}\nin\n{text}");
    }
    assert!(!text.contains("rm -rf /var/lib/marmot/worker\n"), "{text}");
    assert!(!text.contains("userdel"), "{text}");
    assert_eq!(lines(&steps).last().unwrap(), "systemctl daemon-reload");

    let purged = lines(&uninstall(None, true, &facts, &docs()).unwrap()).join("\n");
    for want in ["rm -rf /var/lib/marmot/coordinator", "rm -rf /var/lib/marmot", "userdel marmot"] {
        assert!(purged.lines().any(|l| l == want), "{want}\nin\n{purged}");
    }

    // One role of two: the other's user, docs and state stay.
    let worker_only = lines(&uninstall(Some(Role::Worker), true, &facts, &docs()).unwrap());
    let text = worker_only.join("\n");
    assert!(text.contains("rm -rf /var/lib/marmot/worker"), "{text}");
    assert!(!text.contains("coordinator"), "{text}");
    assert!(!text.contains("userdel") && !text.contains("rm -f /usr/local/share"), "{text}");
    assert!(!text.lines().any(|l| l == "rm -rf /var/lib/marmot"), "{text}");
}

#[test]
fn any_trace_of_a_role_counts_as_installed() {
    assert!(!RoleFacts::default().installed());
    let only_binary = RoleFacts { binary: Some(build("0.1.0+1", "x")), ..Default::default() };
    let only_env = RoleFacts { env: Some(String::new()), ..Default::default() };
    let only_unit = RoleFacts { unit: Some(String::new()), ..Default::default() };
    for facts in [only_binary, only_env, only_unit] {
        assert!(facts.installed(), "{facts:?}");
    }
}

#[test]
fn uninstall_says_when_there_is_nothing_to_remove() {
    let e = uninstall(None, false, &fresh(), &docs()).unwrap_err();
    assert!(e.0.contains("not installed"), "{e}");
    let facts = installed(&worker(Some(TOKEN)), fresh());
    let e = uninstall(Some(Role::Coordinator), false, &facts, &docs()).unwrap_err();
    assert_eq!(e.0, "the coordinator is not installed here");
    // With the package, its units are disabled, not deleted, and the user stays.
    let mut packaged = facts.clone();
    packaged.packaged = true;
    packaged.worker.unit = None;
    packaged.worker.packaged_unit = true;
    let text = lines(&uninstall(None, true, &packaged, &docs()).unwrap()).join("\n");
    assert!(text.contains("systemctl disable --now marmotd-worker.service"), "{text}");
    assert!(!text.contains("/etc/systemd/system") && !text.contains("userdel"), "{text}");
    assert!(!text.contains("/usr/local/share"), "{text}");
}

#[test]
fn the_package_refresh_installs_newer_binaries_and_restarts_what_runs() {
    let mut facts = Facts { exe: PathBuf::from("/usr/bin/marmotd"), packaged: true, ..fresh() };
    facts.coordinator.binary = Some(build("0.1.0+20260101000000", "old"));
    facts.coordinator.active = true;
    facts.worker.binary = Some(build("0.3.0+20260101000000", "newer"));
    facts.worker.active = true;
    let text = lines(&refresh(&facts)).join("\n");
    assert!(
        text.contains("install -m 0755 -o marmot -g marmot /usr/bin/marmotd /var/lib/marmot/coordinator/bin/marmotd"),
        "{text}"
    );
    assert!(text.contains("systemctl try-restart marmotd-coordinator.service"), "{text}");
    assert!(!text.contains("try-restart marmotd-worker"), "{text}");
    assert!(text.contains("# keep the worker's binary"), "{text}");
    // Not running: copied, not started.
    facts.coordinator.active = false;
    let text = lines(&refresh(&facts)).join("\n");
    assert!(!text.contains("try-restart"), "{text}");
    assert!(text.contains("/var/lib/marmot/coordinator/bin/marmotd"), "{text}");
}

#[test]
fn generated_files_are_summarised_by_their_common_directory() {
    let step = Step::WriteGenerated {
        what: "docs".into(),
        files: vec![(PathBuf::from("/a/b/c/x"), vec![]), (PathBuf::from("/a/b/d/y"), vec![])],
    };
    assert_eq!(step.to_string(), "write docs (2 files under /a/b)");
    let none = Step::WriteGenerated { what: "docs".into(), files: vec![] };
    assert_eq!(none.to_string(), "write docs (0 files)");
    assert_eq!(
        Step::RemoveMatching { dir: "/m".into(), prefix: "p".into(), suffix: ".1".into() }
            .to_string(),
        "rm -f /m/p*.1"
    );
    assert_eq!(Step::DeleteUser.to_string(), "userdel marmot");
}
