//! Reading stacks out of a report's text: following a format's steps to the frames its title
//! names, and telling whether every stack the report announces really has frames. Linear in the
//! report's lines.

use regex::{Captures, Regex};

use super::formats::{CompiledStack, CompiledStep};
use super::frames::{self, Pick, FRAME_LINES, INJECTED_FAULT_LINE, STACK_STARTS};

/// A frame a title names: as printed, and with its syscall prefix off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickedFrame {
    pub canonical: String,
    pub raw: String,
}

/// The frames `stack` picks in `text` (one per stack it reads), and whether all were found
/// cleanly; a missing frame is named `corrupted`.
pub fn pick_frames(stack: &CompiledStack, text: &str) -> (Vec<PickedFrame>, bool) {
    let (frames, ok) = follow(&stack.steps, &stack.skip, stack.rule.pick, text);
    if ok || stack.fallback.is_empty() {
        return (frames, ok);
    }
    follow(&stack.fallback, &stack.skip, stack.rule.pick, text)
}

fn add_captures(frames: &mut Vec<String>, caps: &Captures, skip: &Regex) {
    for m in caps.iter().skip(1).flatten() {
        if !skip.is_match(m.as_str()) {
            frames.push(m.as_str().to_string());
        }
    }
}

fn picked(how: Pick, frames: &[String]) -> Option<PickedFrame> {
    let (canonical, idx) = frames::pick(how, frames)?;
    Some(PickedFrame {
        canonical,
        raw: frames.get(idx)?.clone(),
    })
}

fn follow(steps: &[CompiledStep], skip: &Regex, how: Pick, text: &str) -> (Vec<PickedFrame>, bool) {
    let mut lines = text.split('\n');
    let mut found: Vec<String> = Vec::new();
    let mut picks = Vec::new();
    let mut ok = true;
    let mut stacks_read = 0;
    let mut i = 0;
    loop {
        // A stack (or the end of the steps) closes the frames gathered so far into one pick.
        let closes =
            i == steps.len() || (matches!(steps[i], CompiledStep::Stack) && stacks_read > 0);
        if closes {
            match picked(how, &found) {
                Some(p) => picks.push(p),
                None => {
                    ok = false;
                    picks.push(PickedFrame {
                        canonical: "corrupted".into(),
                        raw: "corrupted".into(),
                    });
                }
            }
            found.clear();
        }
        let Some(step) = steps.get(i) else {
            break;
        };
        match step {
            CompiledStep::Stack => {
                stacks_read += 1;
                for line in lines.by_ref() {
                    if INJECTED_FAULT_LINE.is_match(line) {
                        ok = false;
                        break;
                    }
                    if STACK_STARTS.iter().any(|re| re.is_match(line)) {
                        break;
                    }
                    // The next step's line ends this stack.
                    if let Some(CompiledStep::Find(next)) = steps.get(i + 1) {
                        if let Some(caps) = next.captures(line) {
                            add_captures(&mut found, &caps, skip);
                            i += 1;
                            break;
                        }
                    }
                    if let Some(caps) = FRAME_LINES.iter().find_map(|re| re.captures(line)) {
                        add_captures(&mut found, &caps, skip);
                    }
                }
            }
            CompiledStep::Find(re) => {
                for line in lines.by_ref() {
                    if INJECTED_FAULT_LINE.is_match(line) {
                        ok = false;
                        break;
                    }
                    if let Some(caps) = re.captures(line) {
                        add_captures(&mut found, &caps, skip);
                        break;
                    }
                }
            }
        }
        i += 1;
    }
    (picks, ok)
}

/// Why a report's stacks can't be trusted: a stack header with no frames after it, or no
/// stack at all.
pub fn stack_damage(report: &str) -> Option<&'static str> {
    let mut has_stack = false;
    let riscv = STACK_STARTS.len() - 1;
    for (n, start) in STACK_STARTS.iter().enumerate() {
        let Some(m) = start.find(report) else {
            continue;
        };
        let mut after = report[m.start()..].split('\n');
        if after.clone().take(4).count() < 4 {
            return Some("call trace is missed");
        }
        after.next();
        let mut framed = false;
        for line in after.take(15) {
            if STACK_STARTS.iter().any(|re| re.is_match(line)) {
                break;
            }
            if line.contains("(stack is not available)")
                || FRAME_LINES.iter().any(|re| re.is_match(line))
            {
                framed = true;
                has_stack = true;
                break;
            }
        }
        // riscv prints its stack with no header after the registers, so may show none.
        if !framed && n != riscv {
            return Some("no frames in a stack trace");
        }
    }
    (!has_stack).then_some("no stack trace in report")
}
