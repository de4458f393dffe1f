//! A real terminal for a test: a tmux server of the test's own, with one pane.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A tmux server of our own with one 80x24 pane running a command.
pub struct Pane {
    socket: String,
}

impl Pane {
    pub fn start(shell_command: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "labserv-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pane = Pane { socket };
        let ok = pane
            .tmux()
            .args(["new-session", "-d", "-x", "80", "-y", "24", "-s", "ui"])
            .arg(shell_command)
            .args([";", "set-option", "-t", "ui", "remain-on-exit", "on"])
            .status()
            .expect("tmux runs")
            .success();
        assert!(ok, "tmux new-session failed");
        pane
    }

    pub fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"]);
        cmd
    }

    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "ui"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen and the lines scrolled off its top.
    pub fn history(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-S", "-", "-t", "ui"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn query(&self, format: &str) -> String {
        let out = self
            .tmux()
            .args(["display-message", "-p", "-t", "ui", format])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Polls the screen (at most 15 s) until `pred` holds; returns it.
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_text(&self, text: &str) -> String {
        self.wait(text, |s| s.contains(text))
    }

    pub fn keys(&self, keys: &[&str]) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", "ui"])
            .args(keys)
            .status()
            .expect("tmux send-keys")
            .success();
        assert!(ok);
    }

    /// Waits (at most 15 s) for the program in the pane to end.
    pub fn wait_exit(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.query("#{pane_dead}") != "1" {
            assert!(
                Instant::now() < deadline,
                "still running; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

pub fn tmux_available() {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is needed for this test (scripts/test installs it)");
    }
}
