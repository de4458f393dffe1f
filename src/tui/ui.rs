//! Drawing the two screens. One layout function, [`spots`], places every control; the
//! drawing uses it and so does mouse hit-testing, so a click always lands on what is
//! drawn there. The layout itself is in `tui::layout`.

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Widget};
use tui_input::Input;

use super::app::{App, DAEMONS, Item, Screen};
use super::layout::{OPERATION_BUTTONS, field_x, inner, ops, row};
pub use super::layout::{Spot, hit, spots};
use crate::daemon::pidfile::State;

/// Draws the UI and places the cursor in the focused text field.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    frame.render_widget(app, area);
    if let Some(position) = cursor(area, app) {
        frame.set_cursor_position(position);
    }
}

/// Where the terminal cursor goes: in the focused text field, if any.
pub fn cursor(area: Rect, app: &App) -> Option<Position> {
    if app.screen != Screen::Settings || !app.focus.is_text() {
        return None;
    }
    let spot = spots(area, app)
        .into_iter()
        .find(|s| s.item == app.focus && s.option.is_none())?;
    let input = text_of(app, app.focus)?;
    let width = usize::from(spot.rect.width.saturating_sub(1));
    let shown = input.visual_cursor() - input.visual_scroll(width);
    Some(Position::new(spot.rect.x + shown as u16, spot.rect.y))
}

fn text_of(app: &App, item: Item) -> Option<&Input> {
    match item {
        Item::Port => Some(&app.form.port),
        Item::Listen => Some(&app.form.listen),
        Item::Directory => Some(&app.form.directory),
        _ => None,
    }
}

fn focus_style(app: &App, item: Item) -> Style {
    if app.focus == item {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        Style::new()
    }
}

fn put(buf: &mut Buffer, inner: Rect, x: u16, y: u16, text: &str, style: Style) {
    if y < inner.y || y >= inner.bottom() || x >= inner.right() {
        return;
    }
    let width = usize::from(inner.right() - x);
    buf.set_stringn(x, y, text, width, style);
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let title = match (self.screen, &self.target) {
            (Screen::Operations, Some(target)) => {
                format!(" labserv daemontui · {} ", target.kind.program())
            }
            _ => " labserv daemontui · settings ".to_string(),
        };
        Block::default()
            .borders(Borders::ALL)
            .title(title)
            .render(area, buf);
        let inner = inner(area);
        match self.screen {
            Screen::Settings => render_settings(self, inner, area, buf),
            Screen::Operations => render_operations(self, inner, area, buf),
        }
    }
}

fn label(buf: &mut Buffer, inner: Rect, y: u16, text: &str) {
    put(
        buf,
        inner,
        inner.x + 1,
        y,
        text,
        Style::new().fg(Color::Cyan),
    );
}

fn problem(buf: &mut Buffer, inner: Rect, rect: Rect, text: Option<&str>) {
    if let Some(text) = text {
        let style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
        put(
            buf,
            inner,
            rect.right() + 2,
            rect.y,
            &format!("✗ {text}"),
            style,
        );
    }
}

fn render_settings(app: &App, inner: Rect, area: Rect, buf: &mut Buffer) {
    let spots = spots(area, app);
    let find = |item: Item| {
        spots
            .iter()
            .find(|s| s.item == item && s.option.is_none())
            .map(|s| s.rect)
    };
    label(buf, inner, inner.y + row::DAEMON, "Daemon");
    label(buf, inner, inner.y + row::DEBUG, "Debug");
    label(buf, inner, inner.y + row::UPLOAD, "Uploads");
    label(buf, inner, inner.y + row::PORT, "Port");
    label(buf, inner, inner.y + row::DEVICE, "Device");

    for spot in &spots {
        match (spot.item, spot.option) {
            (Item::Daemon, Some(i)) => {
                let mark = if app.form.daemon == i { "(•)" } else { "( )" };
                let text = format!("{mark} {}", DAEMONS[i].program());
                let style = if app.focus == Item::Daemon && app.form.daemon == i {
                    focus_style(app, Item::Daemon)
                } else {
                    Style::new()
                };
                put(buf, inner, spot.rect.x, spot.rect.y, &text, style);
            }
            (Item::Device, Some(i)) => {
                let device = &app.form.devices[i];
                let chosen = app.form.device == i;
                let mark = if chosen { "›" } else { " " };
                let addr = device.addr.map(|a| a.to_string()).unwrap_or_default();
                let text = format!("{mark} {:<12} {addr}", device.name);
                let style = if chosen && app.focus == Item::Device {
                    focus_style(app, Item::Device)
                } else if chosen {
                    Style::new().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                put(buf, inner, spot.rect.x, spot.rect.y, &text, style);
            }
            (Item::Debug, _) => checkbox(buf, inner, spot.rect, app, Item::Debug),
            (Item::Upload, _) => checkbox(buf, inner, spot.rect, app, Item::Upload),
            (Item::Port | Item::Listen | Item::Directory, None) => {
                if let Some(input) = text_of(app, spot.item) {
                    field(buf, inner, spot.rect, input, app.focus == spot.item);
                }
            }
            (Item::Next, _) => button(buf, inner, spot.rect, "Next", app, Item::Next),
            (Item::Cancel, _) => button(buf, inner, spot.rect, "Cancel", app, Item::Cancel),
            _ => {}
        }
    }
    if app.form.devices.is_empty()
        && let Some(rect) = find(Item::Device)
    {
        put(
            buf,
            inner,
            rect.x,
            rect.y,
            "(no interfaces found)",
            Style::new(),
        );
    }
    if let Some(rect) = find(Item::Listen) {
        label(buf, inner, rect.y, "Listen");
        problem(buf, inner, rect, app.problems.listen);
    }
    if let Some(rect) = find(Item::Directory) {
        label(buf, inner, rect.y, "Directory");
        problem(buf, inner, rect, app.problems.directory);
    }
    if let Some(rect) = find(Item::Port) {
        problem(buf, inner, rect, app.problems.port);
    }
    if let (Some(notice), Some(rect)) = (&app.notice, find(Item::Next)) {
        let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
        put(buf, inner, rect.x, rect.y + 1, notice, style);
    }
    help(
        buf,
        inner,
        "Tab/S-Tab move · arrows choose · Space toggle · Enter press · Esc/q quit",
    );
}

fn help(buf: &mut Buffer, inner: Rect, text: &str) {
    if inner.height > 0 {
        let style = Style::new().fg(Color::DarkGray);
        put(buf, inner, inner.x + 1, inner.bottom() - 1, text, style);
    }
}

fn field(buf: &mut Buffer, inner: Rect, rect: Rect, input: &Input, focused: bool) {
    let width = usize::from(rect.width.saturating_sub(1));
    let scroll = input.visual_scroll(width);
    let shown: String = input.value().chars().skip(scroll).take(width).collect();
    let style = if focused {
        Style::new().bg(Color::Blue).fg(Color::White)
    } else {
        Style::new().add_modifier(Modifier::UNDERLINED)
    };
    let padded = format!("{shown:<w$}", w = usize::from(rect.width));
    put(buf, inner, rect.x, rect.y, &padded, style);
}

fn button(buf: &mut Buffer, inner: Rect, rect: Rect, text: &str, app: &App, item: Item) {
    let style = if app.focus == item {
        Style::new()
            .bg(Color::Yellow)
            .fg(Color::Black)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    put(buf, inner, rect.x, rect.y, &format!("[ {text} ]"), style);
}

fn render_operations(app: &App, inner: Rect, area: Rect, buf: &mut Buffer) {
    let Some(target) = &app.target else {
        return;
    };
    let x = field_x(inner);
    let shown = target.shown();
    label(buf, inner, inner.y + ops::DAEMON, "Daemon");
    let debug = if shown.debug { "on" } else { "off" };
    let device = target
        .device
        .as_ref()
        .map_or_else(String::new, |d| format!(" ({d})"));
    let line = format!(
        "{} · port {} · listen {}{device} · debug {debug}",
        target.kind.program(),
        shown.port,
        shown.listen,
    );
    put(buf, inner, x, inner.y + ops::DAEMON, &line, Style::new());
    label(buf, inner, inner.y + ops::DIRECTORY, "Directory");
    // Where uploads land is worth seeing beside the directory they land in.
    let directory = if shown.upload {
        format!("{} · uploads on", shown.directory)
    } else {
        shown.directory
    };
    put(
        buf,
        inner,
        x,
        inner.y + ops::DIRECTORY,
        &directory,
        Style::new(),
    );

    label(buf, inner, inner.y + ops::STATUS, "Status");
    let (text, style) = match &app.state {
        State::Running { pid, addr } => {
            let pid = pid.map_or_else(|| "?".to_string(), |p| p.to_string());
            let addr = addr.map_or_else(|| "starting".to_string(), |a| a.to_string());
            (
                format!("● running, pid {pid}, listening on {addr}"),
                Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
            )
        }
        State::Stale { .. } => (
            "✖ dead (stale pid file)".to_string(),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        State::Stopped => (
            "○ stopped".to_string(),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
    };
    put(buf, inner, x, inner.y + ops::STATUS, &text, style);

    let spots = spots(area, app);
    for spot in &spots {
        if let Some((_, text)) = OPERATION_BUTTONS.iter().find(|(i, _)| *i == spot.item) {
            button(buf, inner, spot.rect, text, app, spot.item);
        }
    }
    label(buf, inner, inner.y + ops::LAST, "Last");
    let last = match (&app.last, app.pending) {
        (Some(last), _) => last.clone(),
        (None, 0) => "—".to_string(),
        (None, _) => "working…".to_string(),
    };
    let style = if last.starts_with("failed") {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    put(buf, inner, x, inner.y + ops::LAST, &last, style);

    if let Some(spot) = spots.iter().find(|s| s.item == Item::Log) {
        render_log(app, target.log_file.display().to_string(), spot.rect, buf);
    }
    help(
        buf,
        inner,
        "Tab ←→ move · Enter press · ↑↓ PgUp PgDn scroll log · Esc back · q exit",
    );
}

fn render_log(app: &App, path: String, rect: Rect, buf: &mut Buffer) {
    let following = if app.log.scroll == 0 {
        "following".to_string()
    } else {
        format!("{} lines back", app.log.scroll)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::new().fg(Color::DarkGray))
        .title(format!(" Log {path} · {following} "));
    let inside = block.inner(rect);
    block.render(rect, buf);
    let height = usize::from(inside.height);
    let width = usize::from(inside.width).max(1);
    // Newest at the bottom; a line wider than the pane wraps onto the rows below it, so
    // the end of a transfer line (its duration and outcome) is never cut off.
    let end = app.log.lines.len().saturating_sub(app.log.scroll);
    let mut rows: Vec<(String, Style)> = Vec::with_capacity(height);
    for line in app.log.lines.range(..end).rev() {
        if rows.len() >= height {
            break;
        }
        let line = short_time(line);
        let style = if line.contains(" WARN ") || line.contains(" ERROR ") {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        };
        let chars: Vec<char> = line.chars().collect();
        let pieces: Vec<String> = if chars.is_empty() {
            vec![String::new()]
        } else {
            chars.chunks(width).map(|c| c.iter().collect()).collect()
        };
        for piece in pieces.into_iter().rev() {
            rows.push((piece, style));
        }
    }
    // Only the rows that fit, the newest lowest.
    rows.truncate(height);
    for (i, (text, style)) in rows.iter().rev().enumerate() {
        let y = inside.y + i as u16;
        put(buf, inside, inside.x, y, text, *style);
    }
}

/// Shows `2026-11-22T07:03:32.531199Z  INFO ...` as `07:03:32  INFO ...`: the date
/// and the fraction take width a log pane cannot spare.
fn short_time(line: &str) -> Cow<'_, str> {
    let b = line.as_bytes();
    let stamped = b.len() > 20
        && b[..19].is_ascii()
        && b[4] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    let zone = line
        .get(..line.len().min(40))
        .and_then(|head| head.find('Z'));
    match (stamped, zone) {
        (true, Some(z)) if z >= 19 => Cow::Owned(format!("{}{}", &line[11..19], &line[z + 1..])),
        _ => Cow::Borrowed(line),
    }
}

/// A checkbox of the settings form: its mark and what it does.
fn checkbox(buf: &mut Buffer, inner: Rect, rect: Rect, app: &App, item: Item) {
    let (on, what) = match item {
        Item::Debug => (app.form.debug, "log every request"),
        Item::Upload => (app.form.upload, "accept uploads"),
        _ => return,
    };
    let mark = if on { "[x]" } else { "[ ]" };
    put(
        buf,
        inner,
        rect.x,
        rect.y,
        &format!("{mark} {what}"),
        focus_style(app, item),
    );
}
