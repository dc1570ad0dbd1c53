//! Sources: how a built-in agent obtains the page it reads. Every source
//! hands its page to the rules extractor (`agents::extract`) and returns a
//! copy of it with the values.

pub mod browser;
pub mod http;
pub mod snapshot;
