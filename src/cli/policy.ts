// `modelgate policy check FILE` and `modelgate policy test`: validate a
// guardrails policy before deploying it, and see what it decides about a
// prompt without calling any model.
import { ConfigError, loadConfigFile, parseYamlWith, readConfigText } from '../config/load.js';
import { GuardrailEngine } from '../policy/guardrail-engine.js';
import { policyFileSchema } from '../policy/guardrails-schema.js';
import { guardrailError } from '../policy/guardrails.js';
import { formatPath } from '../protocol/body-path.js';
import { parseModelRequest } from '../protocol/parse-request.js';
import { configOption, UsageError, type Command } from './command.js';
import { EXIT_CONFIG } from './gateway.js';
import { paint } from './paint.js';

export const policyCommand: Command = {
  name: 'policy',
  summary: 'Validate a guardrails policy, or show what it decides about a prompt.',
  usage: 'modelgate policy check FILE | modelgate policy test --config modelgate.yaml --connection NAME --prompt TEXT [--groups a,b] [--json]',
  options: {
    config: configOption('Gateway configuration whose guardrails to test'),
    connection: { type: 'string', description: 'Connection the prompt would be routed to', valueName: 'name' },
    prompt: { type: 'string', description: 'The prompt text (a user message)', valueName: 'text' },
    subject: { type: 'string', description: 'Caller subject the rules see', valueName: 'sub', default: 'policy-test' },
    groups: { type: 'string', description: 'Comma-separated caller groups the rules see', valueName: 'list', default: '' },
    json: { type: 'boolean', description: 'Print the decisions as JSON' },
  },
  async run(values, positionals) {
    const [action, file] = positionals;
    try {
      if (action === 'check') {
        if (!file) throw new UsageError('policy check needs a FILE');
        const policy = parseYamlWith(policyFileSchema, await readConfigText(file), file).guardrails;
        new GuardrailEngine(policy); // compiles every pattern and dictionary exactly as the gateway would
        console.log(`${file}: policy is valid (${policy.input.length} input rule(s), ${policy.limits.length} limit(s), ${policy.output.length} output rule(s))`);
        return 0;
      }
      if (action === 'test') return await testPolicy(values);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(`modelgate: ${err.message}`);
      return EXIT_CONFIG;
    }
    throw new UsageError(`unknown policy action "${action ?? ''}"; use "check" or "test"`);
  },
};

async function testPolicy(values: Record<string, string | boolean | undefined>): Promise<number> {
  const connection = values.connection;
  const prompt = values.prompt;
  if (typeof connection !== 'string' || typeof prompt !== 'string') throw new UsageError('policy test needs --connection and --prompt');
  const config = await loadConfigFile(String(values.config));
  const route = config.connections.find((c) => c.name === connection);
  if (!route) throw new UsageError(`no connection named "${connection}" in ${String(values.config)}`);

  const engine = new GuardrailEngine(config.guardrails);
  const request = parseModelRequest('chat', { model: route.models[0]!.name, messages: [{ role: 'user', content: prompt }] });
  const principal = { issuer: 'policy-test', subject: String(values.subject), groups: String(values.groups).split(',').filter(Boolean), expiresAt: 0 };
  const evaluation = engine.inspect(principal, connection, request, engine.newSession());
  const refusal = guardrailError(evaluation);

  if (values.json) {
    const notes = knownExamplesIn(prompt).map((e) => `${e.value} is ${e.what}, allowed on purpose`);
    console.log(JSON.stringify({ verdict: evaluation.action, error: refusal?.toJSON().error, decisions: evaluation.decisions, forwarded: evaluation.maskedBody, ...(notes.length > 0 && { notes }) }, null, 2));
    return 0;
  }
  const verdictColour = evaluation.action === 'allow' ? paint.green : paint.red;
  console.log(`verdict: ${verdictColour(evaluation.action)}${refusal ? `  (${refusal.status} ${refusal.code}: ${refusal.message})` : ''}`);
  if (evaluation.decisions.length === 0) console.log('no rule fired');
  for (const d of evaluation.decisions) {
    const where = d.span ? ` at ${formatPath(d.span.path)}[${d.span.start}..${d.span.end}] "${prompt.slice(d.span.start, d.span.end)}"` : '';
    const confidence = d.confidence !== undefined ? ` confidence ${d.confidence.toFixed(2)}` : '';
    console.log(`- ${paint.bold(d.rule)}: ${d.action}${d.type ? ` ${d.type}` : ''}${where}${confidence}\n    ${d.reason}`);
  }
  for (const example of knownExamplesIn(prompt)) {
    console.log(`note: ${example.value} is ${example.what}; secret detection lets documented example keys through on purpose, so documentation and tutorials can be discussed. Try a real-looking key to test a secrets rule.`);
  }
  if (evaluation.maskedBody) {
    const messages = evaluation.maskedBody.messages as Array<{ content: string }>;
    console.log(`forwarded prompt: ${messages[0]!.content}`);
  }
  return 0;
}

/** Credentials vendors publish in their documentation, which the secrets detector deliberately does not flag. */
const KNOWN_EXAMPLE_KEYS: ReadonlyArray<{ value: string; what: string }> = [
  { value: 'AKIAIOSFODNN7EXAMPLE', what: "AWS's documented example access key ID" },
  { value: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', what: "AWS's documented example secret access key" },
  { value: 'ASIAIOSFODNN7EXAMPLE', what: "AWS's documented example temporary access key ID" },
];

function knownExamplesIn(prompt: string): Array<{ value: string; what: string }> {
  return KNOWN_EXAMPLE_KEYS.filter((example) => prompt.includes(example.value));
}
