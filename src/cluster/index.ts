/**
 * Cluster mode: nodes sharing PostgreSQL (state, session ownership) and NATS (routing by interest). See
 * node.ts for ownership and take-over, nats-bus.ts for routing, docs/cluster.md for operating it.
 * Imports: mqtt (the bus and port seams), store, observability, config.
 */
import type { HttpHandler } from '../api/index.js';
import type { Leadership } from './leader.js';
import type { ClusterNode } from './node.js';

export { startCluster, type ClusterNode, type ClusterView, type ClusterOptions } from './node.js';
export { filterSubjects, topicSubject, subjectTopic } from './subjects.js';
export { startLeadership, CLUSTER_TASKS, type Leadership, type LeadershipOptions } from './leader.js';

/**
 * GET /cluster: the nodes, their connections and routes (unauthenticated like /metrics; loopback by default),
 * and `leads`, the single-runner tasks this node runs (leader.ts).
 */
export function clusterRoute(node: ClusterNode, leadership?: Pick<Leadership, 'held'>): HttpHandler {
  return async (req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/cluster') return false;
    const view = { ...(await node.view()), ...(leadership ? { leads: leadership.held() } : {}) };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(view));
    return true;
  };
}
