import { detachForeignAttachments } from "../addons/addons.ts";
import { logChannel } from "../logs/logs.ts";
import { and, asc, eq } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import { accounts, collaborators, type CollaboratorRow } from "../../db/schema/index.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { normalizeEmail } from "./accounts.ts";
import type { AppAccess } from "../apps/apps.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { emit } from "../events/outbox.ts";

/** One member of an app: its owner (no row of its own) or a collaborator. */
export interface Member {
  /** The collaborator row's id; the owner's account id for the owner. */
  id: string;
  role: "owner" | "collaborator";
  user: { id: string; email: string };
  createdAt: Date;
  updatedAt: Date;
}

const collaboratorNotFound = () => new ApiError("not_found", "Couldn't find that collaborator.", "collaborator");

/** The app's owner first, then its collaborators in the order they were added. */
export async function listMembers(db: Database, app: AppAccess): Promise<Member[]> {
  const rows = await db
    .select({ row: collaborators, email: accounts.email })
    .from(collaborators)
    .innerJoin(accounts, eq(accounts.id, collaborators.accountId))
    .where(eq(collaborators.appId, app.id))
    .orderBy(asc(collaborators.createdAt), asc(collaborators.id));
  const owner: Member = {
    id: app.ownerId,
    role: "owner",
    user: { id: app.ownerId, email: app.ownerEmail },
    createdAt: app.createdAt,
    updatedAt: app.createdAt,
  };
  return [owner, ...rows.map(({ row, email }) => toMember(row, email))];
}

/** A member by collaborator id, account id or email (`heroku access:remove EMAIL`). */
export async function getMember(db: Database, app: AppAccess, identity: string): Promise<Member> {
  const key = normalizeEmail(identity);
  const found = (await listMembers(db, app)).find((m) => m.id === key || m.user.id === key || m.user.email === key);
  if (!found) throw collaboratorNotFound();
  return found;
}

/**
 * Lets an account into the app (`heroku access:add EMAIL`). The account must exist; the
 * owner and existing collaborators are refused, changing nothing. The app's log says who.
 */
export async function addCollaborator(ctx: ServiceContext, app: AppAccess, user: string): Promise<Member> {
  const actor = actingUser(ctx);
  const key = normalizeEmail(user);
  const which = isUuid(key) ? eq(accounts.id, key) : eq(accounts.email, key);
  const [account] = await ctx.db.select({ id: accounts.id, email: accounts.email }).from(accounts).where(which).limit(1);
  if (!account) throw new ApiError("not_found", `Couldn't find a user with the email ${user}.`, "user");
  if (account.id === app.ownerId) throw invalidParams(`${account.email} owns ${app.name}; an owner is not a collaborator.`);
  const member = await ctx.db.transaction(async (tx) => {
    const [row] = await tx.insert(collaborators).values({ appId: app.id, accountId: account.id }).onConflictDoNothing().returning();
    if (!row) throw invalidParams(`${account.email} is already a collaborator on ${app.name}.`);
    await emit(tx, { actor, requestId: ctx.requestId }, { type: "collaborator.added", app, data: { email: account.email } });
    return toMember(row, account.email);
  });
  return member;
}

/**
 * Takes a collaborator's access away (`heroku access:remove EMAIL`); the owner cannot be
 * removed. Their live log streams of the app end, and the owner's add-ons they attached to
 * apps the owner cannot reach are detached.
 */
export async function removeCollaborator(ctx: ServiceContext, app: AppAccess, identity: string): Promise<Member> {
  const actor = actingUser(ctx);
  const member = await getMember(ctx.db, app, identity);
  if (member.role === "owner") throw invalidParams(`${member.user.email} owns ${app.name} and cannot be removed from it.`);
  await ctx.db.transaction(async (tx) => {
    const gone = await tx
      .delete(collaborators)
      .where(and(eq(collaborators.id, member.id), eq(collaborators.appId, app.id)))
      .returning({ id: collaborators.id });
    if (!gone.length) throw collaboratorNotFound();
    await emit(tx, { actor, requestId: ctx.requestId }, { type: "collaborator.removed", app, data: { email: member.user.email } });
  });
  // What they held open or took elsewhere goes with their access: live log tails, and the
  // owner's databases attached to apps of theirs the owner cannot reach.
  await logChannel(ctx.env, app.id)
    .endStreamsOf(member.user.id)
    .catch((err) => console.error(JSON.stringify({ end_log_streams_failed: String(err), request_id: ctx.requestId })));
  await detachForeignAttachments(ctx, app, member.user.id);
  return member;
}

function toMember(row: CollaboratorRow, email: string): Member {
  return { id: row.id, role: "collaborator", user: { id: row.accountId, email }, createdAt: row.createdAt, updatedAt: row.updatedAt };
}
