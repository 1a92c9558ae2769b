/**
 * Who a statement is for: an audience lists component names, or
 * `component/instance` for one instance. Shared by the sentinel that names
 * the audience and every receiver that checks whether it is in one.
 */

/** Whether a subscriber is named in a list of audience entries: its component, or `component/instance`. */
export function inAudience(audience: readonly string[], member: { component: string; instance?: string } | undefined): boolean {
  if (!member) return false;
  return audience.some((a) => a === member.component || (member.instance !== undefined && a === `${member.component}/${member.instance}`));
}
