//! The terminal UI's state: the settings form, the daemon it drives, the log it shows,
//! and what each control does when pressed. No drawing and no terminal I/O here.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::layout::Rect;
use tui_input::Input;

use super::control::{Outcome, Runner, Target, action_word};
use super::follow::Follower;
pub use super::form::{
    DAEMONS, DEFAULT_LISTEN, Device, Form, Item, OPERATION_ITEMS, Problems, SETTINGS_ITEMS, Screen,
    check,
};
use crate::cli::Action;
use crate::daemon::Kind;
use crate::daemon::pidfile::State;
use crate::settings::Settings;

/// How often the daemon's state is read from its pid file.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Log lines kept for scrolling back.
const LOG_KEEP: usize = 5000;

/// The log pane: the lines followed so far and how far back the view is scrolled.
#[derive(Debug)]
pub struct LogView {
    /// The file followed.
    pub follower: Option<Follower>,
    /// Lines kept (the newest last).
    pub lines: VecDeque<String>,
    /// Lines scrolled back from the newest; 0 follows new lines.
    pub scroll: usize,
}

/// What happens once a pending stop has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Back to the settings screen.
    Settings,
    /// Quit.
    Quit,
}

/// The whole UI state.
pub struct App {
    /// The screen showing.
    pub screen: Screen,
    /// The focused control.
    pub focus: Item,
    /// The settings form.
    pub form: Form,
    /// What is wrong with the form.
    pub problems: Problems,
    /// A one-line notice (why Next did nothing, ...).
    pub notice: Option<String>,
    /// The daemon being driven (set by Next).
    pub target: Option<Target>,
    /// Its state, from its pid file's lock.
    pub state: State,
    /// The last action's result.
    pub last: Option<String>,
    /// Actions requested and not yet finished.
    pub pending: usize,
    /// What to do once the daemon has been stopped (Back, Exit).
    pub after: Option<After>,
    /// The log pane.
    pub log: LogView,
    /// Set when the UI should end.
    pub quit: bool,
    /// A message to print after the terminal is restored (a daemon that would not stop).
    pub farewell: Option<String>,
    /// The terminal's size at the last draw, for mouse hit-testing.
    pub area: Rect,
    /// The settings the UI started with: their PID, LOG, LPNAME and user directories
    /// decide where each daemon's files are.
    settings: Settings,
    runner: Box<dyn Runner>,
    last_probe: Option<Instant>,
}

impl App {
    /// A UI on the settings screen, its form filled from the environment (PORT, IFACE,
    /// IDEV, DOCROOT, DEBUG) and the daemon's defaults.
    pub fn new(
        runner: Box<dyn Runner>,
        devices: Vec<Device>,
        settings: &Settings,
        first: Kind,
    ) -> Self {
        let daemon = DAEMONS.iter().position(|&k| k == first).unwrap_or(0);
        let port = settings
            .port
            .unwrap_or(DAEMONS[daemon].defaults().port)
            .to_string();
        let listen = settings
            .iface
            .map_or_else(|| DEFAULT_LISTEN.to_string(), |a| a.to_string());
        let directory = settings
            .docroot
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .map(|d| std::path::absolute(&d).unwrap_or(d))
            .unwrap_or_else(|| PathBuf::from("."));
        let device = devices
            .iter()
            .position(|d| d.name == settings.idev)
            .unwrap_or(0);
        let form = Form {
            daemon,
            debug: settings.debug,
            upload: false,
            port: Input::new(port),
            devices,
            device,
            listen: Input::new(listen),
            directory: Input::new(directory.display().to_string()),
        };
        let problems = check(&form);
        Self {
            screen: Screen::Settings,
            focus: Item::Daemon,
            form,
            problems,
            notice: None,
            target: None,
            state: State::Stopped,
            last: None,
            pending: 0,
            after: None,
            log: LogView {
                follower: None,
                lines: VecDeque::new(),
                scroll: 0,
            },
            quit: false,
            farewell: None,
            area: Rect::new(0, 0, 80, 24),
            settings: settings.clone(),
            runner,
            last_probe: None,
        }
    }

    /// The controls of the current screen, in Tab order.
    pub fn items(&self) -> &'static [Item] {
        match self.screen {
            Screen::Settings => &SETTINGS_ITEMS,
            Screen::Operations => &OPERATION_ITEMS,
        }
    }

    /// Moves the focus forward (or back) in Tab order.
    pub fn cycle_focus(&mut self, back: bool) {
        let items = self.items();
        let at = items.iter().position(|&i| i == self.focus).unwrap_or(0);
        let next = if back {
            (at + items.len() - 1) % items.len()
        } else {
            (at + 1) % items.len()
        };
        self.focus = items[next];
    }

    /// Rechecks the form after an edit.
    pub fn edited(&mut self) {
        self.problems = check(&self.form);
        self.notice = None;
    }

    /// Chooses daemon `index`. A port still at the old daemon's default follows the new
    /// daemon's default; a port the user typed is kept.
    pub fn choose_daemon(&mut self, index: usize) {
        let index = index.min(DAEMONS.len() - 1);
        let old = self.form.kind().defaults().port.to_string();
        self.form.daemon = index;
        if self.form.port.value().trim() == old {
            self.form.port = Input::new(self.form.kind().defaults().port.to_string());
        }
        self.edited();
    }

    /// Chooses device `index` and fills Listen with its address.
    pub fn choose_device(&mut self, index: usize) {
        let Some(device) = self.form.devices.get(index) else {
            return;
        };
        self.form.device = index;
        if let Some(addr) = device.addr {
            self.form.listen = Input::new(addr.to_string());
        }
        self.edited();
    }

    /// Presses a button (or toggles the checkbox).
    pub fn press(&mut self, item: Item) {
        self.focus = item;
        match item {
            Item::Debug => {
                self.form.debug = !self.form.debug;
                self.edited();
            }
            Item::Upload => {
                self.form.upload = !self.form.upload;
                self.edited();
            }
            Item::Next => self.next(),
            Item::Cancel => self.quit = true,
            Item::Start => self.act(Action::Start),
            Item::Stop => self.act(Action::Stop),
            Item::Status => self.act(Action::Status),
            Item::Back => self.stop_then(After::Settings),
            Item::Exit => self.stop_then(After::Quit),
            Item::Device => self.choose_device(self.form.device),
            _ => {}
        }
    }

    /// Leaves the UI from anywhere (Ctrl-C): stops the daemon first when one is driven.
    pub fn exit(&mut self) {
        match self.screen {
            // A second Ctrl-C while the daemon is being stopped quits at once.
            Screen::Operations if self.after.is_none() => self.stop_then(After::Quit),
            _ => self.quit = true,
        }
    }

    fn next(&mut self) {
        self.problems = check(&self.form);
        if !self.problems.none() {
            self.notice = Some("Fix the marked fields first.".to_string());
            return;
        }
        let target = self.target_for_form();
        self.log = LogView {
            follower: Some(Follower::new(&target.log_file)),
            lines: VecDeque::new(),
            scroll: 0,
        };
        self.target = Some(target);
        self.screen = Screen::Operations;
        self.focus = Item::Start;
        self.last = None;
        self.notice = None;
        self.last_probe = None;
        self.tick(Instant::now());
    }

    /// The daemon and the typed options the form describes, with its files worked out by
    /// the daemon's own config step. A field the form cannot parse is left unset here;
    /// Next refuses such a form before any action runs.
    pub fn target_for_form(&self) -> Target {
        let kind = self.form.kind();
        let options = self.form.options();
        // The user's own PID, LOG and LPNAME under this daemon's defaults; DEBUG is the
        // form's, not the environment's.
        let settings = Settings {
            defaults: kind.defaults(),
            debug: false,
            ..self.settings.clone()
        };
        let files = crate::daemon::resolve_with(&settings, &options)
            .map(|config| config.settings)
            .unwrap_or(settings);
        Target {
            kind,
            options,
            device: self.form.device_name().map(str::to_string),
            pid_file: files.pid_file(),
            log_file: files.log_file(),
        }
    }

    fn act(&mut self, action: Action) {
        if let Some(target) = &self.target {
            self.runner.request(target, action);
            self.pending += 1;
            self.last = Some(format!("{}…", action_word(action)));
        }
    }

    fn stop_then(&mut self, after: After) {
        if self.after.is_some() {
            return;
        }
        self.after = Some(after);
        self.act(Action::Stop);
    }

    /// Scrolls the log pane back (positive) or forward (negative) by `lines`, never past
    /// the point where the oldest line is at the top of the pane.
    pub fn scroll_log(&mut self, lines: isize) {
        self.log.scroll = self
            .log
            .scroll
            .saturating_add_signed(lines)
            .min(self.max_scroll());
    }

    /// Rows of text the log pane shows at the current terminal size.
    pub fn log_rows(&self) -> usize {
        super::frame::log_rows(self.area)
    }

    /// How far back the log can scroll: the oldest line at the top of a full pane.
    fn max_scroll(&self) -> usize {
        self.log.lines.len().saturating_sub(self.log_rows())
    }

    /// Periodic work: finished actions, the daemon's state, new log lines.
    pub fn tick(&mut self, now: Instant) {
        while let Some(outcome) = self.runner.poll() {
            self.finished(outcome);
        }
        let Some(target) = &self.target else {
            return;
        };
        if self
            .last_probe
            .is_none_or(|at| now.duration_since(at) >= PROBE_EVERY)
        {
            self.state = self.runner.probe(target);
            self.last_probe = Some(now);
        }
        if let Some(follower) = &mut self.log.follower {
            let mut fresh = Vec::new();
            follower.poll(&mut fresh);
            if self.log.scroll > 0 {
                // Scrolled back: keep the view where it is while lines arrive.
                self.log.scroll += fresh.len();
            }
            self.log.lines.extend(fresh);
            while self.log.lines.len() > LOG_KEEP {
                self.log.lines.pop_front();
            }
            self.log.scroll = self.log.scroll.min(self.max_scroll());
        }
    }

    fn finished(&mut self, outcome: Outcome) {
        self.pending = self.pending.saturating_sub(1);
        self.last = Some(outcome.message.clone());
        // The state may have changed: read it on the next tick, not a second later.
        self.last_probe = None;
        if outcome.action == Action::Stop
            && let Some(after) = self.after.take()
        {
            if !outcome.ok() && after == After::Settings {
                // Could not stop it: stay, and say why.
                return;
            }
            if !outcome.ok() {
                // Quitting anyway, as asked; the reason is printed once the terminal is back.
                self.farewell = Some(outcome.message);
            }
            match after {
                After::Settings => {
                    self.screen = Screen::Settings;
                    self.focus = Item::Next;
                    self.target = None;
                    self.log.follower = None;
                }
                After::Quit => self.quit = true,
            }
        }
    }

    /// Whether the daemon runs, as last read.
    pub fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}
