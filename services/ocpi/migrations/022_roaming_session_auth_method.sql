-- How a partner's session was authorized, as OCPI's AuthMethod: AUTH_REQUEST when the partner was
-- asked in real time, WHITELIST when its stored token decided (session.progress, session.finalized).
ALTER TABLE roaming_sessions ADD COLUMN auth_method text;
