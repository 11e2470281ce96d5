//! The deployment files of deploy/ (docs/operations.md, "A three-machine cluster"): the
//! systemd units pass `systemd-analyze verify` (with this build's `tiffin` in place of
//! /usr/local/bin/tiffin, which verify requires to exist), and deploy/redis.conf starts a Redis
//! that Tiffin accepts as a hot store: TLS, a password, `noeviction`, AOF persistence.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tiffin_tls::testing::TestCa;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
fn the_systemd_units_verify() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("SKIP: systemd-analyze is not installed (Debian package systemd)");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(deploy_dir().join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for needed in
            ["NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "LoadCredential="]
        {
            assert!(text.contains(needed), "{name} lacks {needed}");
        }
        assert!(text.contains("DynamicUser=yes") || text.contains("User=tiffin"), "{name}");
        let text = text.replace("/usr/local/bin/tiffin", env!("CARGO_BIN_EXE_tiffin"));
        std::fs::write(dir.path().join(&name), text).unwrap();
        // A template is verified through an instance.
        let unit = name.replace("@.service", "@prove.service");
        if unit != name {
            std::os::unix::fs::symlink(&name, dir.path().join(&unit)).unwrap();
        }
        units.push(unit);
    }
    units.sort();
    assert_eq!(
        units,
        [
            "tiffin-agent@prove.service",
            "tiffin-api.service",
            "tiffin-broker.service",
            "tiffin-verifier.service"
        ]
    );
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // verify exits 0 on unknown keys, only warning: a unit must verify without a word.
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify:\n{said}");
}

#[test]
fn deploy_redis_conf_serves_a_hot_store_tiffin_accepts() {
    let ca = TestCa::new("redis");
    let issued = ca.issue_localhost("redis");
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    std::fs::copy(&issued.cert, tls.join("redis.crt")).unwrap();
    std::fs::copy(&issued.key, tls.join("redis.key")).unwrap();
    std::fs::copy(ca.ca_file(), tls.join("ca.crt")).unwrap();
    std::fs::write(dir.path().join("tiffin-password.conf"), "requirepass conf-test-pw\n").unwrap();
    let port = tiffin_storage::testing::free_port().unwrap();
    let conf = std::fs::read_to_string(deploy_dir().join("redis.conf"))
        .unwrap()
        .replace("/etc/redis/", &format!("{}/", dir.path().display()))
        .replace("/var/lib/redis", &dir.path().display().to_string())
        .replace("bind 0.0.0.0", "bind 127.0.0.1")
        .replace("tls-port 6380", &format!("tls-port {port}"))
        .replace("maxmemory 8gb", "maxmemory 64mb");
    std::fs::write(dir.path().join("redis.conf"), conf).unwrap();
    let mut child = Command::new("redis-server")
        .arg(dir.path().join("redis.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/setup)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "redis-server did not start");
        assert!(child.try_wait().unwrap().is_none(), "redis-server refused deploy/redis.conf");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("rediss://:conf-test-pw@localhost:{port}/");
    let opened =
        rt.block_on(tiffin_storage::open_hot_with_ca(&url, Some(32 << 20), Some(&ca.ca_file())));
    let aof = dir.path().join("appendonlydir").exists();
    let _ = child.kill();
    let _ = child.wait();
    opened.expect("Tiffin accepts it: TLS with the CA, the password, noeviction");
    assert!(aof, "AOF persistence is on");
}
