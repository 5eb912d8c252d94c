"""Schemas of the three databases, as forward migrations.

Each list entry moves a database from version ``i`` to ``i + 1`` (``PRAGMA user_version``).
Never edit a released entry: append a new one. Tests open a database at every earlier
version and migrate it to the newest.
"""

LEON_MIGRATIONS: list[str] = [
    # v1: threads, append-only messages and checkpoints, summaries, events, usage, blobs.
    """
    CREATE TABLE blobs (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,          -- sha256 hex of data
        kind TEXT NOT NULL,                 -- system_prompt | tools | skills | file
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE threads (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL CHECK (kind IN ('general', 'scoped', 'subagent', 'oneshot')),
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'completed', 'archived')),
        parent_id TEXT REFERENCES threads(id) ON DELETE SET NULL,
        name TEXT UNIQUE,                   -- scoped threads: leon --thread NAME
        day TEXT,                           -- general threads: YYYY-MM-DD
        agent TEXT NOT NULL DEFAULT 'default',
        model TEXT NOT NULL DEFAULT '',
        system_hash TEXT,                   -- blobs.hash
        tools_hash TEXT,                    -- blobs.hash
        head_checkpoint_id INTEGER,         -- the active pointer
        message_count INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        completed_at REAL
    );
    CREATE INDEX threads_updated ON threads(updated_at);
    CREATE INDEX threads_kind_day ON threads(kind, day);
    CREATE INDEX threads_parent ON threads(parent_id);
    -- parent_id is not a declared foreign key on purpose: every delete would then scan
    -- for children. The store only ever links to a message of the same thread.
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        parent_id INTEGER,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,              -- JSON list of Messages API content blocks
        status TEXT NOT NULL DEFAULT 'complete'
            CHECK (status IN ('complete', 'interrupted', 'streaming')),
        tokens INTEGER,                     -- cached token count
        pinned INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_thread ON messages(thread_id, id);
    CREATE TABLE summaries (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        upto_message_id INTEGER NOT NULL,   -- last message it replaces, on its branch
        previous_id INTEGER,                -- the summary it folded in
        text TEXT NOT NULL,
        model TEXT NOT NULL,
        messages_replaced INTEGER NOT NULL,
        tokens_before INTEGER NOT NULL,
        tokens_after INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX summaries_thread ON summaries(thread_id);
    CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        parent_id INTEGER,                  -- the checkpoint before, on this branch
        message_id INTEGER,                 -- head message (NULL: empty thread)
        summary_id INTEGER,                 -- active summary at this point
        kind TEXT NOT NULL,                 -- user | reply | tool | compaction | interrupted | import
        label TEXT,                         -- a name the user gave it
        created_at REAL NOT NULL
    );
    CREATE INDEX checkpoints_thread ON checkpoints(thread_id, id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        thread_id TEXT REFERENCES threads(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,                 -- prune | compact | spill | guard | retry | rollback | error ...
        data TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX events_thread ON events(thread_id, id);
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        thread_id TEXT REFERENCES threads(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        estimated_tokens INTEGER,           -- leon's own estimate of the request
        latency_ms REAL NOT NULL,
        retries INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX usage_thread ON usage(thread_id, id);
    CREATE TABLE file_ops (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        checkpoint_id INTEGER,
        path TEXT NOT NULL,
        before_hash TEXT,                   -- blobs.hash; NULL: the file did not exist
        after_hash TEXT,                    -- blobs.hash; NULL: the file was deleted
        created_at REAL NOT NULL
    );
    CREATE INDEX file_ops_thread ON file_ops(thread_id, id);
    """,
    # FTS5 search for the thread browser (leon/store/search.py): thread titles and the
    # text of user and assistant messages, kept in sync by triggers.
    """
    -- Full-text search for the thread browser: thread titles and names, and the text
    -- blocks of user and assistant messages. Tool results and tool calls are left out:
    -- they are most of the bytes and rarely what a user searches for.
    -- message_fts is contentless (rowid = messages.id): it keeps only the index, not a
    -- second copy of the text; the triggers re-derive the text to delete an entry.
    CREATE VIRTUAL TABLE message_fts USING fts5(
        text, content='', tokenize='unicode61 remove_diacritics 2');
    CREATE VIRTUAL TABLE thread_fts USING fts5(
        thread_id UNINDEXED, title, name, tokenize='unicode61 remove_diacritics 2');
    CREATE TRIGGER message_fts_ai AFTER INSERT ON messages BEGIN
        INSERT INTO message_fts (rowid, text)
        SELECT new.id, t FROM (
            SELECT group_concat(json_extract(j.value, '$.text'), char(10)) AS t
            FROM json_each(CASE WHEN json_valid(new.content) THEN new.content ELSE '[]' END) AS j
            WHERE json_extract(j.value, '$.type') = 'text')
        WHERE t <> '';
    END;
    CREATE TRIGGER message_fts_ad AFTER DELETE ON messages BEGIN
        INSERT INTO message_fts (message_fts, rowid, text)
        SELECT 'delete', old.id, t FROM (
            SELECT group_concat(json_extract(j.value, '$.text'), char(10)) AS t
            FROM json_each(CASE WHEN json_valid(old.content) THEN old.content ELSE '[]' END) AS j
            WHERE json_extract(j.value, '$.type') = 'text')
        WHERE t <> '';
    END;
    CREATE TRIGGER message_fts_au AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO message_fts (message_fts, rowid, text)
        SELECT 'delete', old.id, t FROM (
            SELECT group_concat(json_extract(j.value, '$.text'), char(10)) AS t
            FROM json_each(CASE WHEN json_valid(old.content) THEN old.content ELSE '[]' END) AS j
            WHERE json_extract(j.value, '$.type') = 'text')
        WHERE t <> '';
        INSERT INTO message_fts (rowid, text)
        SELECT new.id, t FROM (
            SELECT group_concat(json_extract(j.value, '$.text'), char(10)) AS t
            FROM json_each(CASE WHEN json_valid(new.content) THEN new.content ELSE '[]' END) AS j
            WHERE json_extract(j.value, '$.type') = 'text')
        WHERE t <> '';
    END;
    CREATE TRIGGER thread_fts_ai AFTER INSERT ON threads BEGIN
        INSERT INTO thread_fts (thread_id, title, name)
        VALUES (new.id, new.title, coalesce(new.name, ''));
    END;
    CREATE TRIGGER thread_fts_ad AFTER DELETE ON threads BEGIN
        DELETE FROM thread_fts WHERE thread_id = old.id;
    END;
    CREATE TRIGGER thread_fts_au AFTER UPDATE OF title, name ON threads BEGIN
        DELETE FROM thread_fts WHERE thread_id = old.id;
        INSERT INTO thread_fts (thread_id, title, name)
        VALUES (new.id, new.title, coalesce(new.name, ''));
    END;
    INSERT INTO thread_fts (thread_id, title, name)
    SELECT id, title, coalesce(name, '') FROM threads;
    INSERT INTO message_fts (rowid, text)
    SELECT id, t FROM (
        SELECT m.id AS id, (SELECT group_concat(json_extract(j.value, '$.text'), char(10))
            FROM json_each(CASE WHEN json_valid(m.content) THEN m.content ELSE '[]' END) AS j
            WHERE json_extract(j.value, '$.type') = 'text') AS t
        FROM messages m)
    WHERE t <> '';
    """,
    # Tools that change things (leon/store/tool_state.py): what each thread has read
    # (edit_file refuses stale or unread files, across restarts), the "always allow"
    # answers given in a thread, and what kind of change each file_ops row records.
    """
    CREATE TABLE file_reads (
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        path TEXT NOT NULL,                 -- real absolute path
        hash TEXT NOT NULL,                 -- sha256 of the content the thread last saw
        read_at REAL NOT NULL,
        PRIMARY KEY (thread_id, path)
    );
    CREATE TABLE permission_grants (
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        rule TEXT NOT NULL,                 -- 'edit_file', 'bash:git status*'
        created_at REAL NOT NULL,
        PRIMARY KEY (thread_id, rule)
    );
    ALTER TABLE file_ops ADD COLUMN kind TEXT NOT NULL DEFAULT 'tool'; -- tool | subagent | restore
    ALTER TABLE file_ops ADD COLUMN tool TEXT;
    CREATE INDEX file_ops_path ON file_ops(thread_id, path, id);
    """,
    # The memory middleware (leon/store/memory_store.py): tool outputs spilled to files,
    # and the per-model factor that corrects leon's token estimates to the API's counts.
    """
    CREATE TABLE spills (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        message_id INTEGER,                 -- the stored tool_result message (set once stored)
        tool_use_id TEXT NOT NULL,
        tool_name TEXT NOT NULL DEFAULT '',
        path TEXT NOT NULL,                 -- the file under the thread's spill directory
        bytes INTEGER NOT NULL,             -- UTF-8 size of the full output
        chars INTEGER NOT NULL,
        lines INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX spills_thread ON spills(thread_id, tool_use_id);
    CREATE TABLE calibration (
        model TEXT PRIMARY KEY,
        observations TEXT NOT NULL,         -- JSON list: API prompt tokens / leon's raw estimate
        updated_at REAL NOT NULL
    );
    """,
    # The session lifecycle (leon/lifecycle/): the skills snapshot each thread used (a
    # blob, stored once), deletion intents (a thread being deleted across the three
    # databases is hidden until it is gone; startup finishes what a crash interrupted),
    # and a growth sample per start (`leon stats --history`).
    """
    ALTER TABLE threads ADD COLUMN skills_hash TEXT;   -- blobs.hash (kind skills)
    CREATE TABLE deletions (
        thread_id TEXT PRIMARY KEY,         -- threads.id; removed with the thread
        reason TEXT NOT NULL,               -- ephemeral | archived | max_threads | disk | user
        archive TEXT,                       -- the archive file written before
        created_at REAL NOT NULL
    );
    CREATE TABLE stats_samples (
        id INTEGER PRIMARY KEY,
        data TEXT NOT NULL,                 -- JSON: counts and sizes (leon/lifecycle/stats.py)
        created_at REAL NOT NULL
    );
    """,
    # Thread search (leon/store/search.py) maps each matching message to its thread: a
    # covering index keeps those lookups off the large message rows (about twice as
    # fast with 500,000 messages; see BENCHMARKS.md, Startup).
    """
    CREATE INDEX messages_id_thread ON messages(id, thread_id);
    """,
    # Turns that stay correct across processes: a user message whose call failed before
    # any reply arrived is ``unsent`` (kept and shown, never sent again unless the user
    # resends it); each reply names the model that wrote it; and the cache guard's state
    # (cache-creation tokens of the last call, rate-limited calls in a row) lives with
    # the thread, so the next call acts on it whichever leon process makes it.
    """
    ALTER TABLE messages ADD COLUMN unsent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN model TEXT;
    ALTER TABLE threads ADD COLUMN guard_cache_creation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE threads ADD COLUMN guard_rate_strikes INTEGER NOT NULL DEFAULT 0;
    """,
    # Why a reply ended, when the user must know: 'max_tokens' (cut off at the output
    # limit), 'model_context_window_exceeded', 'refusal' (declined), 'pause_turn'. NULL
    # for an ordinary end. A nullable column, not new values of messages.status: SQLite
    # cannot change a CHECK without rebuilding the table (every message copied, indexes
    # and references re-made), and such a reply is still 'complete' -- the API finished
    # it -- so every reader of status stays right as it is.
    """
    ALTER TABLE messages ADD COLUMN stop_reason TEXT;
    """,
    # The workspace each file change was confined to, so `leon rollback --files` confines
    # the restore to the same root (leon/agent/filehistory.py). NULL for older rows and
    # imported ones: the restore then uses the workspace it is given (cwd or --workspace).
    """
    ALTER TABLE file_ops ADD COLUMN workspace TEXT;
    """,
]

SANDBOX_MIGRATIONS: list[str] = [
    # v1: sandboxes (a working directory per thread), leases with expiry, commands.
    """
    CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        thread_id TEXT NOT NULL,            -- leon.db threads.id (another file: no FK)
        provider TEXT NOT NULL DEFAULT 'local',
        path TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'ready', -- ready | removed
        created_at REAL NOT NULL,
        removed_at REAL
    );
    CREATE INDEX sandboxes_thread ON sandboxes(thread_id);
    CREATE TABLE leases (
        id INTEGER PRIMARY KEY,
        sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
        holder TEXT NOT NULL,               -- pid@host of the process holding it
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        released_at REAL,
        desired_state TEXT NOT NULL DEFAULT 'held',
        observed_state TEXT NOT NULL DEFAULT 'held'
    );
    CREATE INDEX leases_open ON leases(sandbox_id, released_at);
    CREATE TABLE lease_events (
        id INTEGER PRIMARY KEY,
        lease_id INTEGER NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        from_state TEXT,
        to_state TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY,
        sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
        command TEXT NOT NULL,
        exit_code INTEGER,
        duration_ms REAL NOT NULL,
        bytes_out INTEGER NOT NULL,
        spill_path TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX commands_sandbox ON commands(sandbox_id, id);
    """,
]

CHAT_MIGRATIONS: list[str] = [
    # v1: entities, chats, members with read markers, messages with mentions.
    """
    CREATE TABLE entities (
        id TEXT PRIMARY KEY,                -- 'user', 'agent:default', 'subagent:reviewer'
        kind TEXT NOT NULL,                 -- user | agent | subagent
        name TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY,
        thread_id TEXT UNIQUE,              -- leon.db threads.id (another file: no FK)
        title TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE chat_members (
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        entity_id TEXT NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
        last_read_id INTEGER NOT NULL DEFAULT 0,
        muted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (chat_id, entity_id)
    );
    CREATE TABLE chat_messages (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        sender_id TEXT NOT NULL REFERENCES entities(id),
        text TEXT NOT NULL,
        mentions TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL
    );
    CREATE INDEX chat_messages_chat ON chat_messages(chat_id, id);
    """,
]
