//! Permission matrix tests (being written).
