//! rampart-waf: the ModSecurity SecLang engine (parse → compile → evaluate), no networking.
