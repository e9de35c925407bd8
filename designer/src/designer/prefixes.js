// Files from other tools sometimes bind the prefix `camunda` to another namespace (Activiti's
// "http://activiti.org/bpmn" in the MIWG C.1 models). bpmn-js knows `camunda` as Camunda's
// namespace and then cannot write the file back ("no namespace uri given for prefix <ns0>").
// Such a prefix is renamed in tag and attribute names before import; the namespace and every
// value stay as they were, so the document means the same.
const CAMUNDA_URI = 'http://camunda.org/schema/1.0/bpmn';
const DECLARATION = /\sxmlns:camunda\s*=\s*(["'])(.*?)\1/g;

export function renameForeignCamundaPrefix(xml) {
  const uris = [...xml.matchAll(DECLARATION)].map((match) => match[2]);
  if (!uris.length || uris.includes(CAMUNDA_URI)) return xml;
  let prefix = 'camunda_foreign';
  while (xml.includes(`xmlns:${prefix}=`)) prefix += '_';
  return xml.replace(/<(\/?)([^<>!?][^<>]*)>/g, (tag, slash, body) => {
    const renamed = body
      .replace(/^camunda:/, `${prefix}:`)
      .replace(/(\s)xmlns:camunda(\s*=)/g, `$1xmlns:${prefix}$2`)
      .replace(/(\s)camunda:([A-Za-z_][\w.-]*)(\s*=)/g, `$1${prefix}:$2$3`);
    return `<${slash}${renamed}>`;
  });
}
