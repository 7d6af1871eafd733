"""The real ACP client from the registries (PyPI `agent-client-protocol`) driving `punie acp`.

Run by the end-to-end suite (`acp::the_python_sdk_client_drives_punie_acp`) with the Python of
the test tools' virtual environment, which `scripts/test.sh` installs:

    python tests/acp/sdk_client.py PUNIE SCRIPT WORKSPACE SESSION_DIR

SCRIPT is a scripted engine whose first prompt writes a file (a tool call that asks permission)
and whose turns are slow enough for the second prompt to be cancelled. The SDK validates every
message against its generated schema, so a shape Punie gets wrong fails here. Prints
`acp sdk: N passed, 0 failed` and exits 0, or raises.
"""

import asyncio
import os
import sys

from acp import spawn_agent_process, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)


class RecordingClient:
    """Answers the agent like an editor would and records what it was sent."""

    def __init__(self) -> None:
        self.updates: list = []
        self.permission_requests: list = []
        self.writes: list = []

    async def request_permission(self, session_id, tool_call, options, **kwargs):
        self.permission_requests.append((tool_call, options))
        allow_once = next(o for o in options if o.kind == "allow_once")
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=allow_once.option_id)
        )

    async def session_update(self, session_id, update, **kwargs):
        self.updates.append(update)

    async def write_text_file(self, session_id, path, content, **kwargs):
        self.writes.append((path, content))
        return WriteTextFileResponse()

    async def read_text_file(self, session_id, path, line=None, limit=None, **kwargs):
        with open(path, encoding="utf-8") as file:
            return ReadTextFileResponse(content=file.read())


async def main(punie: str, script: str, workspace: str, session_dir: str) -> int:
    client = RecordingClient()
    env = dict(os.environ, PUNIE_SESSION_DIR=session_dir, PUNIE_LOG="warn")
    env.pop("PUNIE_ENGINE", None)
    passed = 0
    async with spawn_agent_process(client, punie, "acp", f"--engine=scripted:{script}", env=env) as (conn, _process):
        init = await conn.initialize(
            protocol_version=1,
            client_capabilities=ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=True, write_text_file=True)
            ),
        )
        assert init.protocol_version == 1, init
        assert init.agent_capabilities.load_session is True, init
        passed += 1

        session = await conn.new_session(cwd=workspace, mcp_servers=[])
        assert session.config_options and session.config_options[0].category == "model", session
        passed += 1

        response = await conn.prompt(session_id=session.session_id, prompt=[text_block("Write the notes.")])
        assert response.stop_reason == "end_turn", response
        kinds = [getattr(u, "session_update", None) for u in client.updates]
        assert "tool_call" in kinds and "tool_call_update" in kinds, kinds
        assert "agent_message_chunk" in kinds, kinds
        assert len(client.permission_requests) == 1, client.permission_requests
        tool_call, options = client.permission_requests[0]
        assert {o.kind for o in options} == {"allow_once", "allow_always", "reject_once", "reject_always"}, options
        assert tool_call.kind == "edit", tool_call
        assert [path for path, _ in client.writes] == [os.path.join(workspace, "notes.txt")], client.writes
        passed += 1

        # The second prompt streams slowly; cancel it once it has started.
        task = asyncio.ensure_future(
            conn.prompt(session_id=session.session_id, prompt=[text_block("Talk at length.")])
        )
        while not any(getattr(u, "session_update", None) == "agent_message_chunk" for u in client.updates[len(kinds):]):
            await asyncio.sleep(0.01)
        await conn.cancel(session_id=session.session_id)
        response = await asyncio.wait_for(task, timeout=60)
        assert response.stop_reason == "cancelled", response
        passed += 1

        listed = await conn.list_sessions(cwd=workspace)
        assert [s.session_id for s in listed.sessions] == [session.session_id], listed
        passed += 1
    print(f"acp sdk: {passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:5])))
