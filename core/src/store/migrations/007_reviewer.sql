-- lode workspace store, version 7: who made each review decision. The command line, the
-- terminal UI and the MCP server (an agent) decide through one function and say who they
-- are: `cli`, `tui` or `mcp`. Decisions recorded before this version have none (NULL).
ALTER TABLE reviews ADD COLUMN reviewer TEXT;
