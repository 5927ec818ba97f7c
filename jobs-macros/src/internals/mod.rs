//! Parsing into a typed model, then checks; the expanders read only the model.

pub mod ast;
pub mod attr;
pub mod case;
pub mod check;
pub mod ctxt;
pub mod duration;
