//! `daemontui`: a terminal UI to pick a daemon, set it up, start and stop it, and watch
//! its log.
//!
//! Laid out as ratatui apps usually are: [`app`] holds the state and what each control
//! does, [`event`] turns keys and mouse clicks into changes of it, [`ui`] draws it (its
//! one layout function also places mouse hits), [`control`] runs the daemon binaries and
//! reads their pid files, and [`follow`] tails the log.

pub mod app;
pub mod control;
pub mod event;
pub mod follow;
pub mod form;
mod frame;
mod layout;
mod summary;
pub mod ui;

use std::io::{self, IsTerminal, Stdout};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::cli::{DaemonName, TuiArgs};
use crate::daemon::Kind;
use crate::settings::{Defaults, Settings};
use app::{App, Device};
use control::Binaries;

/// How long the UI waits for a key or click before doing its periodic work.
const FRAME: Duration = Duration::from_millis(50);

/// Runs `daemontui`.
///
/// # Errors
/// Bad environment values (exit 2), or a terminal that fails (exit 1).
pub fn main(args: TuiArgs) -> crate::Result<ExitCode> {
    let settings = Settings::from_env(Defaults::HTTP)?;
    if args.common.show_settings {
        print!("{}", settings.report("daemontui"));
        return Ok(ExitCode::SUCCESS);
    }
    let first = match args.daemon {
        None | Some(DaemonName::Tftpdaemon) => Kind::Tftp,
        Some(DaemonName::Atftpdaemon) => Kind::Atftp,
        Some(DaemonName::Httpdaemon) => Kind::Http,
    };
    let runner = Box::new(Binaries::new(Binaries::beside_current_exe()));
    let mut app = App::new(runner, Device::detect(), &settings, first);
    let result = run(&mut app);
    // The terminal is back to normal here, whatever happened.
    if let Some(message) = &app.farewell {
        eprintln!("daemontui: {message}");
    }
    if app.form.debug || settings.debug {
        print!("{}", app.summary());
    }
    result.map_err(|e| crate::Error::io("terminal", e))?;
    Ok(ExitCode::SUCCESS)
}

fn run(app: &mut App) -> io::Result<()> {
    // SIGTERM, SIGHUP (the terminal closed) and SIGINT end the UI like Ctrl-C does,
    // through the loop, so the terminal is restored.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut screen = Screen::enter()?;
    // crossterm's reader spins for ever on a terminal that has hung up (its window
    // closed, its ssh session or tmux gone): it reads end-of-file again and again. So
    // the UI waits for input itself and hands crossterm only input that is there. Once
    // the terminal is gone, nothing is drawn or read, and the UI ends as on Ctrl-C,
    // stopping a daemon it drives first.
    let tty = io::stdin().is_terminal();
    let mut gone = false;
    // Whether a signal or the hang-up has already asked the UI to end: the SIGHUP that
    // comes with a hang-up is the same request, not a second Ctrl-C (which quits at once).
    let mut ending = false;
    while !app.quit {
        if gone {
            // Nothing to draw or read: keep the pace while a stop under way finishes.
            std::thread::sleep(FRAME);
        } else {
            let drawn = screen.terminal.draw(|frame| {
                app.area = frame.area();
                ui::draw(frame, app);
            });
            gone = match drawn {
                Ok(_) => handle_input(app, tty)?,
                // A terminal that hung up fails to draw; anything else is an error.
                Err(_) if matches!(wait_for_input(Duration::ZERO), Input::HungUp) => true,
                Err(e) => return Err(e),
            };
            if gone && !std::mem::replace(&mut ending, true) {
                app.exit();
            }
        }
        if stop.swap(false, Ordering::Relaxed) && !gone {
            ending = true;
            app.exit();
        }
        app.tick(Instant::now());
    }
    Ok(())
}

/// Waits up to a frame for input and handles what came; true if the terminal hung up.
fn handle_input(app: &mut App, tty: bool) -> io::Result<bool> {
    if !tty {
        // Input is not a terminal; crossterm reads /dev/tty itself.
        if crossterm::event::poll(FRAME)? {
            event::handle(app, &crossterm::event::read()?);
        }
        return Ok(false);
    }
    match wait_for_input(FRAME) {
        Input::Ready => {
            while crossterm::event::poll(Duration::ZERO)? {
                event::handle(app, &crossterm::event::read()?);
            }
            Ok(false)
        }
        Input::Quiet => Ok(false),
        Input::HungUp => Ok(true),
    }
}

/// What the terminal on standard input had within a wait.
enum Input {
    /// Bytes to read.
    Ready,
    /// Nothing (or a signal came).
    Quiet,
    /// Its other end has closed.
    HungUp,
}

/// Waits up to `wait` for standard input.
fn wait_for_input(wait: Duration) -> Input {
    let mut fd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd that outlives the call.
    let ready = unsafe { libc::poll(&mut fd, 1, ms) };
    if ready <= 0 {
        Input::Quiet
    } else if fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Input::HungUp
    } else {
        Input::Ready
    }
}

/// The terminal in raw mode on the alternate screen with mouse reporting; put back as it
/// was when dropped, and by a panic hook should the UI panic.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter() -> io::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        let screen = Screen {
            terminal: Terminal::new(CrosstermBackend::new(io::stdout()))?,
        };
        execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        let _ = self.terminal.show_cursor();
    }
}

fn restore() {
    let _ = execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen);
    let _ = disable_raw_mode();
}
