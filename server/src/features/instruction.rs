//! [`Instruction`]: what the user asks Punie to do with a selection. The same five in every
//! front end: LSP code actions, ACP slash commands, `punie ask --explain|--fix|--tests|--refactor`.

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instruction {
    Explain,
    Fix,
    Tests,
    Refactor,
    /// A free-form question (the selection is context; without a question it is the question).
    Ask,
}

impl Instruction {
    pub const ALL: [Instruction; 5] = [
        Instruction::Explain,
        Instruction::Fix,
        Instruction::Tests,
        Instruction::Refactor,
        Instruction::Ask,
    ];

    pub fn parse(name: &str) -> Option<Instruction> {
        Instruction::ALL
            .into_iter()
            .find(|instruction| instruction.name() == name)
    }

    /// The wire name (`punie.ask`'s `instruction`, ACP's command name, the CLI flag).
    pub fn name(self) -> &'static str {
        match self {
            Instruction::Explain => "explain",
            Instruction::Fix => "fix",
            Instruction::Tests => "tests",
            Instruction::Refactor => "refactor",
            Instruction::Ask => "ask",
        }
    }

    /// The menu title (LSP code action).
    pub fn title(self) -> &'static str {
        match self {
            Instruction::Explain => "Ask Punie: Explain",
            Instruction::Fix => "Ask Punie: Fix",
            Instruction::Tests => "Ask Punie: Write tests",
            Instruction::Refactor => "Ask Punie: Refactor",
            Instruction::Ask => "Ask Punie…",
        }
    }

    /// One line for command lists (ACP `available_commands_update`).
    pub fn description(self) -> &'static str {
        match self {
            Instruction::Explain => "Explain what the selected code does",
            Instruction::Fix => "Find and fix the bugs in the selected code",
            Instruction::Tests => "Write tests for the selected code",
            Instruction::Refactor => "Refactor the selected code without changing its behaviour",
            Instruction::Ask => "Ask a question about the selected code",
        }
    }

    /// The answer's first code block replaces the selection.
    pub fn replaces_selection(self) -> bool {
        matches!(self, Instruction::Fix | Instruction::Refactor)
    }

    /// A free-form question continues the conversation; the other instructions are
    /// self-contained and start a new one (which a later question then continues).
    pub fn continues_conversation(self) -> bool {
        self == Instruction::Ask
    }
}
