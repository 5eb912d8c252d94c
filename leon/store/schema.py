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
