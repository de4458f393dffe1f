//! Turning terminal events (keys, mouse, resize) into changes of the UI's state.

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use tui_input::backend::crossterm::EventHandler as _;

use super::app::{App, DAEMONS, Item, Screen};
use super::ui;

/// Lines a mouse wheel step scrolls the log.
const WHEEL: isize = 3;

/// Applies one terminal event to the UI.
pub fn handle(app: &mut App, event: &Event) {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => on_key(app, key, event),
        Event::Mouse(mouse) => on_mouse(app, mouse),
        Event::Resize(width, height) => app.area = Rect::new(0, 0, *width, *height),
        _ => {}
    }
}

fn on_key(app: &mut App, key: &KeyEvent, event: &Event) {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.exit();
        return;
    }
    match key.code {
        KeyCode::Tab => return app.cycle_focus(false),
        KeyCode::BackTab => return app.cycle_focus(true),
        KeyCode::Esc => {
            return match app.screen {
                Screen::Settings => app.quit = true,
                Screen::Operations => app.press(Item::Back),
            };
        }
        KeyCode::Char('q') if !app.focus.is_text() => {
            return match app.screen {
                Screen::Settings => app.quit = true,
                Screen::Operations => app.press(Item::Exit),
            };
        }
        _ => {}
    }
    if app.screen == Screen::Operations {
        return on_operations_key(app, key);
    }
    let focus = app.focus;
    match focus {
        Item::Daemon => match key.code {
            KeyCode::Left | KeyCode::Up => app.choose_daemon(app.form.daemon.saturating_sub(1)),
            KeyCode::Right | KeyCode::Down => {
                app.choose_daemon((app.form.daemon + 1).min(DAEMONS.len() - 1));
            }
            KeyCode::Enter => app.cycle_focus(false),
            _ => {}
        },
        Item::Device => match key.code {
            KeyCode::Up => app.choose_device(app.form.device.saturating_sub(1)),
            KeyCode::Down => app.choose_device(app.form.device + 1),
            KeyCode::Enter | KeyCode::Char(' ') => app.press(Item::Device),
            _ => {}
        },
        Item::Port | Item::Listen | Item::Directory => match key.code {
            KeyCode::Enter | KeyCode::Down => app.cycle_focus(false),
            KeyCode::Up => app.cycle_focus(true),
            _ => {
                let input = match focus {
                    Item::Port => &mut app.form.port,
                    Item::Listen => &mut app.form.listen,
                    _ => &mut app.form.directory,
                };
                if input.handle_event(event).is_some() {
                    app.edited();
                }
            }
        },
        _ => match key.code {
            KeyCode::Enter | KeyCode::Char(' ') => app.press(focus),
            KeyCode::Left | KeyCode::Up => app.cycle_focus(true),
            KeyCode::Right | KeyCode::Down => app.cycle_focus(false),
            _ => {}
        },
    }
}

/// The operations screen has buttons and the log, and no text field: ← → move between
/// the buttons and the scroll keys scroll the log whatever is focused.
fn on_operations_key(app: &mut App, key: &KeyEvent) {
    let page = isize::try_from(app.log_rows().max(1)).unwrap_or(1);
    match key.code {
        KeyCode::Up => app.scroll_log(1),
        KeyCode::Down => app.scroll_log(-1),
        KeyCode::PageUp => app.scroll_log(page),
        KeyCode::PageDown => app.scroll_log(-page),
        KeyCode::Home => app.scroll_log(isize::MAX),
        KeyCode::End => app.log.scroll = 0,
        KeyCode::Left => app.cycle_focus(true),
        KeyCode::Right => app.cycle_focus(false),
        KeyCode::Enter | KeyCode::Char(' ') => app.press(app.focus),
        _ => {}
    }
}

fn on_mouse(app: &mut App, mouse: &MouseEvent) {
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            let Some(spot) = ui::hit(app.area, app, mouse.column, mouse.row) else {
                return;
            };
            if spot.item == Item::Log {
                // The log is no control: it scrolls with the wheel and the keys.
                return;
            }
            app.focus = spot.item;
            match (spot.item, spot.option) {
                (Item::Daemon, Some(i)) => app.choose_daemon(i),
                (Item::Device, Some(i)) => app.choose_device(i),
                (Item::Port | Item::Listen | Item::Daemon | Item::Device | Item::Directory, _) => {}
                (item, _) => app.press(item),
            }
        }
        MouseEventKind::ScrollUp if app.screen == Screen::Operations => app.scroll_log(WHEEL),
        MouseEventKind::ScrollDown if app.screen == Screen::Operations => app.scroll_log(-WHEEL),
        _ => {}
    }
}
