//! rampart-gateway
