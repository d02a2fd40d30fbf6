//! The assistant: answers running questions from a bilingual knowledge base and the runner's own
//! data, cited, with or without an LLM.

mod builtin;
pub mod calc;
pub mod knowledge;
pub mod retrieval;
pub mod text;
