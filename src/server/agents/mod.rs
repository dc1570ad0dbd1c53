//! Agents: what runs one job. This module holds what the built-in http
//! agent does with a fetched page — find each output field's value — so it
//! can be tested on the demo shop's markup without a network.

pub mod extract;
pub mod fetch;
