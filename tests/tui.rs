//! daemontui's screens and state: rendered on ratatui's TestBackend at 80x24 and a larger
//! size, and driven with key and mouse events, against a scripted runner that records
//! the daemon actions instead of running them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::rc::Rc;

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use labserv::cli::Action;
use labserv::daemon::Kind;
use labserv::daemon::pidfile::State;
use labserv::settings::{Defaults, Settings, UserDirs};
use labserv::tui::app::{App, Device, Item, Screen};
use labserv::tui::control::{Outcome, Runner, Target};
use labserv::tui::{event, ui};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Records what the UI asks for and answers from a script.
#[derive(Clone, Default)]
struct Scripted {
    requested: Rc<RefCell<Vec<(Action, Target)>>>,
    state: Rc<RefCell<State>>,
    outcomes: Rc<RefCell<VecDeque<Outcome>>>,
    ready: Rc<RefCell<VecDeque<Outcome>>>,
}

impl Runner for Scripted {
    fn request(&mut self, target: &Target, action: Action) {
        self.requested.borrow_mut().push((action, target.clone()));
        let scripted = self.outcomes.borrow_mut().pop_front();
        let outcome = scripted.unwrap_or(Outcome {
            action,
            code: Some(0),
            message: format!("{action:?} done"),
        });
        self.ready.borrow_mut().push_back(outcome);
    }

    fn poll(&mut self) -> Option<Outcome> {
        self.ready.borrow_mut().pop_front()
    }

    fn probe(&mut self, _target: &Target) -> State {
        self.state.borrow().clone()
    }
}

impl Scripted {
    fn actions(&self) -> Vec<Action> {
        self.requested.borrow().iter().map(|(a, _)| *a).collect()
    }
}

struct Fixture {
    app: App,
    runner: Scripted,
    dir: tempfile::TempDir,
}

fn devices() -> Vec<Device> {
    vec![
        Device {
            name: "eth0".into(),
            addr: Some("192.168.7.2".parse().unwrap()),
        },
        Device {
            name: "lo".into(),
            addr: Some("127.0.0.1".parse().unwrap()),
        },
        Device {
            name: "usb0".into(),
            addr: Some("10.42.0.1".parse().unwrap()),
        },
    ]
}

/// A UI on a fresh directory, with `env` as its environment.
fn fixture_with(env: &[(&str, &str)], first: Kind) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let dirs = UserDirs {
        state: Some(dir.path().join("state")),
        runtime: Some(dir.path().join("run")),
        cache: None,
        data: Some(dir.path().join("data")),
    };
    let mut vars: Vec<(String, OsString)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    if !env.iter().any(|(k, _)| *k == "DOCROOT") {
        vars.push(("DOCROOT".into(), dir.path().as_os_str().to_owned()));
    }
    let settings = Settings::from_lookup(
        |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        dirs,
        Defaults::HTTP,
    )
    .unwrap();
    let runner = Scripted::default();
    let app = App::new(Box::new(runner.clone()), devices(), &settings, first);
    Fixture { app, runner, dir }
}

fn fixture() -> Fixture {
    fixture_with(&[], Kind::Tftp)
}

/// The screen as text, one string per row.
fn render(app: &mut App, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            app.area = frame.area();
            ui::draw(frame, app);
        })
        .unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

fn row_with<'a>(screen: &'a [String], text: &str) -> &'a str {
    screen
        .iter()
        .find(|row| row.contains(text))
        .unwrap_or_else(|| panic!("no row with {text:?} in\n{}", screen.join("\n")))
}

fn key(app: &mut App, code: KeyCode) {
    event::handle(app, &Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn ctrl(app: &mut App, c: char) {
    event::handle(
        app,
        &Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)),
    );
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn focus(app: &mut App, item: Item) {
    for _ in 0..app.items().len() {
        if app.focus == item {
            return;
        }
        key(app, KeyCode::Tab);
    }
    assert_eq!(app.focus, item, "Tab never reaches {item:?}");
}

/// Clicks the spot of `item` (and list option `option`), as a terminal reports it.
fn click(app: &mut App, item: Item, option: Option<usize>) {
    let spot = ui::spots(app.area, app)
        .into_iter()
        .find(|s| s.item == item && s.option == option)
        .unwrap_or_else(|| panic!("{item:?} {option:?} is not on screen"));
    event::handle(
        app,
        &Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: spot.rect.x + 1,
            row: spot.rect.y,
            modifiers: KeyModifiers::NONE,
        }),
    );
}

#[test]
fn the_settings_screen_shows_every_control_with_its_value() {
    for (width, height) in [(80, 24), (132, 40)] {
        let mut f = fixture();
        let screen = render(&mut f.app, width, height);
        assert!(
            screen[0].contains("labserv daemontui · settings"),
            "{}",
            screen[0]
        );
        let daemon = row_with(&screen, "Daemon");
        assert!(daemon.contains("(•) tftpdaemon"), "{daemon}");
        assert!(daemon.contains("( ) atftpdaemon"), "{daemon}");
        assert!(daemon.contains("( ) httpdaemon"), "{daemon}");
        assert!(row_with(&screen, "Debug").contains("[ ] log every request"));
        assert!(row_with(&screen, "Port").contains("9069"));
        assert!(row_with(&screen, "192.168.7.2").contains("eth0"));
        assert!(row_with(&screen, "Listen").contains("127.0.0.1"));
        let dir = f.dir.path().display().to_string();
        assert!(row_with(&screen, "Directory").contains(&dir));
        let buttons = row_with(&screen, "[ Next ]");
        assert!(buttons.contains("[ Cancel ]"));
        assert!(screen[usize::from(height) - 2].contains("Tab/S-Tab move"));
        // Nothing drawn past the frame.
        assert!(
            screen
                .iter()
                .all(|r| r.chars().count() == usize::from(width))
        );
    }
}

#[test]
fn the_operations_screen_shows_state_buttons_last_result_and_log() {
    for (width, height) in [(80, 24), (132, 40)] {
        let mut f = fixture_with(&[("IFACE", "127.0.0.1")], Kind::Http);
        key(&mut f.app, KeyCode::Tab);
        focus(&mut f.app, Item::Next);
        key(&mut f.app, KeyCode::Enter);
        assert_eq!(f.app.screen, Screen::Operations);
        let log = f.app.target.clone().unwrap().log_file;
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(
            &log,
            "2026-11-22T07:03:32.531199Z  INFO access: 127.0.0.1:5 \"GET /fw.img HTTP/1.1\" 200 6 0.2ms\n",
        )
        .unwrap();
        *f.runner.state.borrow_mut() = State::Running {
            pid: Some(4242),
            addr: Some("127.0.0.1:8080".parse().unwrap()),
        };
        key(&mut f.app, KeyCode::Enter); // Start
        f.app.tick(std::time::Instant::now());

        let screen = render(&mut f.app, width, height);
        assert!(
            screen[0].contains("daemontui · httpdaemon"),
            "{}",
            screen[0]
        );
        let daemon = row_with(&screen, "Daemon");
        assert!(
            daemon.contains("httpdaemon · port 8080 · listen 127.0.0.1"),
            "{daemon}"
        );
        assert!(
            row_with(&screen, "Status")
                .contains("● running, pid 4242, listening on 127.0.0.1:8080")
        );
        let buttons = row_with(&screen, "[ Start ]");
        for b in ["[ Stop ]", "[ Status ]", "[ Back ]", "[ Exit ]"] {
            assert!(buttons.contains(b), "{buttons}");
        }
        assert!(row_with(&screen, "Last").contains("Start done"));
        assert!(row_with(&screen, "Log ").contains("following"));
        // The log line, its timestamp shortened to the time of day.
        let line = row_with(&screen, "GET /fw.img");
        assert!(line.contains("07:03:32  INFO access"), "{line}");
    }
}

#[test]
fn fields_are_edited_and_checked_as_they_change() {
    let mut f = fixture();
    focus(&mut f.app, Item::Port);
    ctrl(&mut f.app, 'u');
    type_text(&mut f.app, "70000");
    assert_eq!(f.app.form.port.value(), "70000");
    assert_eq!(f.app.problems.port, Some("port must be 1 to 65535"));
    let screen = render(&mut f.app, 80, 24);
    assert!(row_with(&screen, "Port").contains("✗ port must be 1 to 65535"));

    key(&mut f.app, KeyCode::Backspace);
    assert_eq!(f.app.form.port.value(), "7000");
    assert_eq!(f.app.problems.port, None);

    focus(&mut f.app, Item::Listen);
    ctrl(&mut f.app, 'u');
    type_text(&mut f.app, "10.0.0.300");
    assert_eq!(f.app.problems.listen, Some("not an IP address"));
    ctrl(&mut f.app, 'u');
    type_text(&mut f.app, "::1");
    assert_eq!(f.app.problems.listen, None);

    focus(&mut f.app, Item::Directory);
    type_text(&mut f.app, "/missing");
    assert_eq!(f.app.problems.directory, Some("no such directory"));
    let screen = render(&mut f.app, 80, 24);
    assert!(row_with(&screen, "Directory").contains("✗ no such directory"));

    // `q` in a text field is a letter, not quit.
    type_text(&mut f.app, "q");
    assert!(!f.app.quit);
    assert!(f.app.form.directory.value().ends_with("/missingq"));
}

#[test]
fn next_is_blocked_until_every_field_is_valid() {
    let mut f = fixture();
    focus(&mut f.app, Item::Port);
    ctrl(&mut f.app, 'u');
    type_text(&mut f.app, "0");
    focus(&mut f.app, Item::Next);
    key(&mut f.app, KeyCode::Enter);
    assert_eq!(f.app.screen, Screen::Settings);
    let screen = render(&mut f.app, 80, 24);
    row_with(&screen, "Fix the marked fields first.");

    focus(&mut f.app, Item::Port);
    ctrl(&mut f.app, 'u');
    type_text(&mut f.app, "6969");
    click(&mut f.app, Item::Next, None);
    assert_eq!(f.app.screen, Screen::Operations);
    let target = f.app.target.clone().unwrap();
    assert_eq!(target.kind, Kind::Tftp);
    // The form's values reach the daemon typed, as its own options.
    let shown = target.shown();
    assert_eq!(shown.port, "6969");
    assert_eq!(shown.listen, "127.0.0.1");
    assert!(!shown.debug);
    let args: Vec<String> = target
        .options
        .to_args()
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert!(args.windows(2).any(|w| w == ["--port", "6969"]), "{args:?}");
    assert!(
        args.windows(2).any(|w| w == ["--host", "127.0.0.1"]),
        "{args:?}"
    );
    assert_eq!(
        target.pid_file,
        f.dir.path().join("run/labserv/tftpd.pid"),
        "the daemon's own default pid file"
    );
}

#[test]
fn defaults_follow_the_daemon_choice() {
    let mut f = fixture();
    assert_eq!(f.app.form.port.value(), "9069");
    key(&mut f.app, KeyCode::Right);
    key(&mut f.app, KeyCode::Right);
    assert_eq!(f.app.form.kind(), Kind::Http);
    assert_eq!(f.app.form.port.value(), "8080");
    click(&mut f.app, Item::Daemon, Some(1));
    assert_eq!(f.app.form.kind(), Kind::Atftp);
    assert_eq!(f.app.form.port.value(), "9069");

    // A port the user typed stays when the daemon changes.
    focus(&mut f.app, Item::Port);
    ctrl(&mut f.app, 'u');
    type_text(&mut f.app, "6969");
    click(&mut f.app, Item::Daemon, Some(2));
    assert_eq!(f.app.form.port.value(), "6969");
    assert_eq!(f.app.form.listen.value(), "127.0.0.1");
}

#[test]
fn choosing_a_device_fills_the_listen_address() {
    let mut f = fixture();
    // IDEV is unset, so its default, lo, is chosen first; Listen keeps its own default.
    assert_eq!(f.app.form.device_name(), Some("lo"));
    assert_eq!(f.app.form.listen.value(), "127.0.0.1");
    focus(&mut f.app, Item::Device);
    key(&mut f.app, KeyCode::Down);
    assert_eq!(f.app.form.device_name(), Some("usb0"));
    assert_eq!(f.app.form.listen.value(), "10.42.0.1");
    click(&mut f.app, Item::Device, Some(0));
    assert_eq!(f.app.form.device_name(), Some("eth0"));
    assert_eq!(f.app.form.listen.value(), "192.168.7.2");
    key(&mut f.app, KeyCode::Down);
    assert_eq!(f.app.form.device_name(), Some("lo"));
    assert_eq!(f.app.form.listen.value(), "127.0.0.1");
}

#[test]
fn space_toggles_debug_and_the_mouse_does_too() {
    let mut f = fixture();
    focus(&mut f.app, Item::Debug);
    key(&mut f.app, KeyCode::Char(' '));
    assert!(f.app.form.debug);
    click(&mut f.app, Item::Debug, None);
    assert!(!f.app.form.debug);
    click(&mut f.app, Item::Debug, None);
    let screen = render(&mut f.app, 80, 24);
    assert!(row_with(&screen, "Debug").contains("[x]"));
    assert!(f.app.summary().contains("DEBUG=1\n"));
}

#[test]
fn tab_and_shift_tab_visit_every_control_in_order() {
    let mut f = fixture();
    let mut seen = vec![f.app.focus];
    for _ in 1..9 {
        key(&mut f.app, KeyCode::Tab);
        seen.push(f.app.focus);
    }
    assert_eq!(
        seen,
        [
            Item::Daemon,
            Item::Debug,
            Item::Upload,
            Item::Port,
            Item::Device,
            Item::Listen,
            Item::Directory,
            Item::Next,
            Item::Cancel
        ]
    );
    key(&mut f.app, KeyCode::Tab);
    assert_eq!(f.app.focus, Item::Daemon, "wraps around");
    key(&mut f.app, KeyCode::BackTab);
    assert_eq!(f.app.focus, Item::Cancel);
}

#[test]
fn cancel_esc_and_q_quit_from_the_settings_screen() {
    for how in ["cancel", "esc", "q", "click"] {
        let mut f = fixture();
        match how {
            "cancel" => {
                focus(&mut f.app, Item::Cancel);
                key(&mut f.app, KeyCode::Enter);
            }
            "esc" => key(&mut f.app, KeyCode::Esc),
            "q" => key(&mut f.app, KeyCode::Char('q')),
            _ => {
                render(&mut f.app, 80, 24);
                click(&mut f.app, Item::Cancel, None);
            }
        }
        assert!(f.app.quit, "{how}");
        assert!(
            f.runner.actions().is_empty(),
            "{how}: no daemon was touched"
        );
    }
}

/// A fixture moved on to the operations screen for httpdaemon.
fn operating() -> Fixture {
    let mut f = fixture_with(&[], Kind::Http);
    focus(&mut f.app, Item::Next);
    key(&mut f.app, KeyCode::Enter);
    assert_eq!(f.app.screen, Screen::Operations);
    assert_eq!(f.app.focus, Item::Start);
    f
}

#[test]
fn start_stop_and_status_buttons_run_the_daemon_actions() {
    let mut f = operating();
    f.runner.outcomes.borrow_mut().push_back(Outcome {
        action: Action::Start,
        code: Some(1),
        message: "failed: cannot listen on 0.0.0.0:8080: address already in use".into(),
    });
    key(&mut f.app, KeyCode::Enter);
    f.app.tick(std::time::Instant::now());
    assert_eq!(
        f.app.last.as_deref(),
        Some("failed: cannot listen on 0.0.0.0:8080: address already in use")
    );
    render(&mut f.app, 80, 24);
    click(&mut f.app, Item::Stop, None);
    click(&mut f.app, Item::Status, None);
    f.app.tick(std::time::Instant::now());
    assert_eq!(
        f.runner.actions(),
        [Action::Start, Action::Stop, Action::Status]
    );
    assert_eq!(f.app.last.as_deref(), Some("Status done"));
    assert_eq!(f.app.screen, Screen::Operations, "Stop alone stays");
}

#[test]
fn the_state_indicator_follows_the_pid_file_also_when_the_daemon_dies() {
    let mut f = operating();
    let start = std::time::Instant::now();
    *f.runner.state.borrow_mut() = State::Running {
        pid: Some(7),
        addr: None,
    };
    f.app.tick(start + std::time::Duration::from_secs(1));
    assert!(f.app.running());
    // Dies on its own: the next probe, within a second, shows it.
    *f.runner.state.borrow_mut() = State::Stale { pid: Some(7) };
    f.app.tick(start + std::time::Duration::from_secs(2));
    let screen = render(&mut f.app, 80, 24);
    assert!(row_with(&screen, "Status").contains("dead"));
}

#[test]
fn back_stops_the_daemon_and_returns_to_the_settings() {
    let mut f = operating();
    render(&mut f.app, 80, 24);
    click(&mut f.app, Item::Back, None);
    f.app.tick(std::time::Instant::now());
    assert_eq!(f.runner.actions(), [Action::Stop]);
    assert_eq!(f.app.screen, Screen::Settings);
    assert!(!f.app.quit);
}

#[test]
fn exit_and_ctrl_c_stop_the_daemon_and_quit() {
    for how in ["exit", "q", "ctrl-c"] {
        let mut f = operating();
        render(&mut f.app, 80, 24);
        match how {
            "exit" => click(&mut f.app, Item::Exit, None),
            "q" => key(&mut f.app, KeyCode::Char('q')),
            _ => ctrl(&mut f.app, 'c'),
        }
        assert!(!f.app.quit, "{how}: not before the daemon has stopped");
        f.app.tick(std::time::Instant::now());
        assert_eq!(f.runner.actions(), [Action::Stop], "{how}");
        assert!(f.app.quit, "{how}");
    }
}

#[test]
fn a_back_whose_stop_fails_stays_and_says_why() {
    let mut f = operating();
    f.runner.outcomes.borrow_mut().push_back(Outcome {
        action: Action::Stop,
        code: Some(1),
        message: "failed: signalling pid 1: Operation not permitted".into(),
    });
    key(&mut f.app, KeyCode::Esc);
    f.app.tick(std::time::Instant::now());
    assert_eq!(f.app.screen, Screen::Operations);
    assert!(
        f.app
            .last
            .as_deref()
            .unwrap()
            .starts_with("failed: signalling")
    );
}

#[test]
fn the_log_pane_scrolls_with_keys_and_wheel_and_follows_at_the_end() {
    let mut f = operating();
    let log = f.app.target.clone().unwrap().log_file;
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, text).unwrap();
    f.app.tick(std::time::Instant::now());
    let screen = render(&mut f.app, 80, 24);
    assert!(screen.iter().any(|r| r.contains("line 99")));

    // The scroll keys work whichever button has focus.
    assert_eq!(f.app.focus, Item::Start);
    key(&mut f.app, KeyCode::PageUp);
    assert_eq!(f.app.focus, Item::Start);
    let screen = render(&mut f.app, 80, 24);
    assert!(!screen.iter().any(|r| r.contains("line 99")));
    assert!(row_with(&screen, "Log ").contains("lines back"));

    key(&mut f.app, KeyCode::End);
    event::handle(
        &mut f.app,
        &Event::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollUp,
            column: 10,
            row: 12,
            modifiers: KeyModifiers::NONE,
        }),
    );
    assert_eq!(f.app.log.scroll, 3);
    // New lines arrive while scrolled back: the view stays put.
    std::fs::write(&log, "").unwrap();
    let mut extra = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut extra, b"fresh\n").unwrap();
    f.app.tick(std::time::Instant::now());
    assert_eq!(f.app.log.scroll, 4);
    key(&mut f.app, KeyCode::End);
    let screen = render(&mut f.app, 80, 24);
    assert!(screen.iter().any(|r| r.contains("fresh")));
}

#[test]
fn the_form_starts_from_the_environment() {
    let f = fixture_with(
        &[
            ("PORT", "7070"),
            ("IFACE", "127.0.0.1"),
            ("IDEV", "usb0"),
            ("DEBUG", "1"),
        ],
        Kind::Atftp,
    );
    assert_eq!(f.app.form.kind(), Kind::Atftp);
    assert_eq!(f.app.form.port.value(), "7070");
    assert_eq!(f.app.form.listen.value(), "127.0.0.1");
    assert_eq!(f.app.form.device_name(), Some("usb0"));
    assert!(f.app.form.debug);
    let summary = f.app.summary();
    assert!(summary.starts_with("DAEMON=atftpdaemon\n"), "{summary}");
    assert!(summary.contains("PORT=7070\n") && summary.contains("IDEV=usb0\n"));
}

#[test]
fn any_terminal_size_draws_without_a_panic() {
    let mut f = operating();
    let log = f.app.target.clone().unwrap().log_file;
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "2026-11-22T07:03:32.531199Z  INFO a line\n").unwrap();
    f.app.tick(std::time::Instant::now());
    let mut settings = fixture();
    for width in [0, 1, 2, 5, 13, 20, 40, 79, 200] {
        for height in [0, 1, 2, 3, 7, 12, 23, 60] {
            render(&mut f.app, width, height);
            render(&mut settings.app, width, height);
            // Clicks anywhere on a tiny screen land on something or nothing, never panic.
            for (column, row) in [(0, 0), (width / 2, height / 2), (width, height)] {
                event::handle(
                    &mut settings.app,
                    &Event::Mouse(MouseEvent {
                        kind: MouseEventKind::Down(MouseButton::Left),
                        column,
                        row,
                        modifiers: KeyModifiers::NONE,
                    }),
                );
            }
        }
    }
}

#[test]
fn scrolling_back_stops_with_the_oldest_line_at_the_top() {
    let mut f = operating();
    let log = f.app.target.clone().unwrap().log_file;
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let text: String = (0..20).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, text).unwrap();
    f.app.tick(std::time::Instant::now());
    let rows = f.app.log_rows();
    assert!(rows > 0 && rows < 20, "{rows} rows at 80x24");
    for _ in 0..5 {
        key(&mut f.app, KeyCode::PageUp);
    }
    assert_eq!(f.app.log.scroll, 20 - rows);
    let screen = render(&mut f.app, 80, 24);
    assert!(screen.iter().any(|r| r.contains("line 0")), "{screen:#?}");
    assert!(!screen.iter().any(|r| r.contains("line 19")), "{screen:#?}");
    key(&mut f.app, KeyCode::Home);
    assert_eq!(f.app.log.scroll, 20 - rows);
}

#[test]
fn long_log_lines_wrap_instead_of_losing_their_end() {
    let mut f = operating();
    let log = f.app.target.clone().unwrap().log_file;
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let line = format!(
        "2026-11-22T07:03:32.531199Z  INFO access: 127.0.0.1:40398 read \"{}\" 41943040 bytes in 0.240s (174.8 MB/s) ok-END",
        "k".repeat(40)
    );
    std::fs::write(&log, format!("{line}\n")).unwrap();
    f.app.tick(std::time::Instant::now());
    let screen = render(&mut f.app, 80, 24);
    assert!(screen.iter().any(|r| r.contains("ok-END")), "{screen:#?}");
    assert!(screen.iter().any(|r| r.contains("07:03:32  INFO access")));
}

#[test]
fn tab_on_the_operations_screen_visits_only_the_buttons() {
    let mut f = operating();
    let mut seen = vec![f.app.focus];
    for _ in 0..5 {
        key(&mut f.app, KeyCode::Tab);
        seen.push(f.app.focus);
    }
    assert_eq!(
        seen,
        [
            Item::Start,
            Item::Stop,
            Item::Status,
            Item::Back,
            Item::Exit,
            Item::Start
        ]
    );
    key(&mut f.app, KeyCode::Right);
    assert_eq!(f.app.focus, Item::Stop);
    key(&mut f.app, KeyCode::Left);
    assert_eq!(f.app.focus, Item::Start);
}

#[test]
fn the_uploads_box_starts_either_daemon_with_uploads_on() {
    for kind in [Kind::Http, Kind::Tftp] {
        let mut f = fixture_with(&[], kind);
        let screen = render(&mut f.app, 80, 24);
        assert!(row_with(&screen, "Uploads").contains("[ ] accept uploads"));
        focus(&mut f.app, Item::Upload);
        key(&mut f.app, KeyCode::Char(' '));
        assert!(f.app.form.upload);
        click(&mut f.app, Item::Upload, None);
        assert!(!f.app.form.upload, "a click toggles it back");
        click(&mut f.app, Item::Upload, None);
        let screen = render(&mut f.app, 80, 24);
        assert!(row_with(&screen, "Uploads").contains("[x] accept uploads"));

        focus(&mut f.app, Item::Next);
        key(&mut f.app, KeyCode::Enter);
        key(&mut f.app, KeyCode::Enter); // Start
        let requested = f.runner.requested.borrow();
        let (action, target) = requested.last().expect("an action ran");
        assert_eq!(*action, Action::Start);
        let args: Vec<String> = target
            .options
            .to_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"--upload".to_string()), "{kind:?}: {args:?}");
        assert!(!args.contains(&"--overwrite".to_string()), "{args:?}");
        drop(requested);
        let screen = render(&mut f.app, 80, 24);
        assert!(row_with(&screen, "Directory").contains("· uploads on"));
        assert!(f.app.summary().contains("UPLOAD=1\n"));
    }
}
