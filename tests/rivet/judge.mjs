// Zoom's Rivet as the judge of webhook deliveries: each captured delivery (its headers and raw body) goes through
// Rivet's own receiver code (AwsLambdaReceiver, which shares CommonHttpRequest.processEvent with its HTTP receiver):
// Rivet verifies x-zm-signature over its own JSON.stringify of the body and answers 400 when that fails, else
// dispatches the event through its meetings event processor.
// stdin: {"secret": "<webhook secret token>", "events": ["meeting.started", ...], "deliveries": [{"headers": {...},
// "body": "<raw body>"}]}; stdout: [{"statusCode": N, "answer": {...}, "dispatched": <event or null>}, ...]
import { AwsLambdaReceiver, MeetingsEventProcessor } from "@zoom/rivet/meetings";

console.debug = () => {}; // the Lambda receiver prints every event it processes

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));

let dispatched = null;
const processor = new MeetingsEventProcessor(undefined);
for (const name of input.events) {
  processor.event(name, (event) => {
    dispatched = event;
  });
}
const receiver = new AwsLambdaReceiver({ webhooksSecretToken: input.secret });
receiver.init({ eventEmitter: processor });
const handle = receiver.start();

const results = [];
for (const delivery of input.deliveries) {
  dispatched = null;
  const answer = await handle({ body: delivery.body, headers: delivery.headers, isBase64Encoded: false }, {});
  results.push({ statusCode: answer.statusCode, answer: JSON.parse(answer.body), dispatched });
}
process.stdout.write(JSON.stringify(results));
