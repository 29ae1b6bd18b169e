// Heuristic rules for prompt injection and jailbreaks: the explanation layer
// beside the learned classifier (classifier.ts). Each rule is one general move
// of an attack (override the instructions in force, extract what the model
// was told, cast it as a persona without rules, forge a turn, smuggle an
// encoded order, address the model from inside a document) or a named
// jailbreak family (DAN, developer mode, the "grandmother" exploit, the
// PromptInject canary), with a weight (how much it alone suggests an attack)
// and a reason shown to operators. Rules look for the move's grammar
// ("ignore" + "previous" + "instructions"), not for single keywords or for
// sentences of any corpus, so requests that merely mention instructions,
// passwords or developer mode stay below the threshold. Weights are set by
// judgement of how unambiguous a move is, not fitted to data.

export type InjectionCategory =
  | 'instruction_override'
  | 'prompt_exfiltration'
  | 'data_exfiltration'
  | 'roleplay_jailbreak'
  | 'turn_spoofing'
  | 'goal_hijack'
  | 'encoded_payload'
  | 'indirect';

export interface InjectionRule {
  rule: string;
  category: InjectionCategory;
  pattern: RegExp;
  weight: number;
  reason: string;
  /** Only matches text with characters outside ASCII: not run on ASCII text. */
  nonAscii?: boolean;
}

// Up to n filler words ("all of the", "any previous and following").
// Latin letters only: the `u` flag would make these case-insensitive patterns six times slower.
const filler = (n: number): string => `(?:[\\s,]+[A-Za-z\\u00C0-\\u024F'’-]+){0,${n}}?`;
// The same after a separator: up to n words, each followed by its separator.
const words = (n: number): string => `(?:[A-Za-z\\u00C0-\\u024F'’-]+[\\s,]+){0,${n}}?`;
const S = '[\\s,]+';

// Reported speech ("my manager said to skip the previous instructions") passes an order on to the user, not to the model.
const REPORTED = "(?<!\\b(?:said|says|told\\s+(?:me|us|them)|tells\\s+(?:me|us)|asked\\s+(?:me|us|them)|wants?\\s+(?:me|us|them))\\s+to\\s+)";
const OVERRIDE_VERB = '(?:ignore|disregard|forget|overlook|override|overrule|bypass|skip|discard|abandon|neglect|drop|set\\s+aside|pay\\s+no\\s+attention\\s+to)';
// Words that point at the instructions already in force; not "old" or "current", which users say of their own documents.
const EARLIER = '(?:previous|prior|preceding|earlier|above|foregoing|former|original|initial|following|system|developer|safety)';
const DIRECTIVES = '(?:instructions?|rules?|directions?|guidelines?|prompts?|commands?|guidance|programming|directives?|constraints?|restrictions?|polic(?:y|ies)|orders|training|settings|context)';
const EXFIL_VERB = '(?:print|reveal|show|display|output|repeat|recite|dump|leak|disclose|expose|share|write\\s+out|spell\\s+out|tell\\s+me|give\\s+me|send\\s+me|paste|copy)';

function rx(source: string): RegExp {
  return new RegExp(source, 'gi');
}

export const INJECTION_RULES: readonly InjectionRule[] = [
  // Instruction override
  {
    rule: 'override.ignore_previous_instructions',
    category: 'instruction_override',
    pattern: rx(`${REPORTED}\\b${OVERRIDE_VERB}(?!${S}(?:my|our)\\b)${filler(4)}${S}(?:(?:all|any|every|the|your|these|those|its)${S})?${words(2)}${EARLIER}${S}${words(2)}${DIRECTIVES}\\b`),
    weight: 0.8,
    reason: 'asks the model to ignore the instructions it was given',
  },
  {
    rule: 'override.ignore_system_message',
    category: 'instruction_override',
    pattern: rx(`\\b${OVERRIDE_VERB}${S}(?:(?:the|your|this)${S})?(?:system|developer|original|initial)${S}(?:message|prompt|instructions?)\\b`),
    weight: 0.75,
    reason: 'asks the model to ignore its system message',
  },
  {
    rule: 'override.ignore_previous_instructions_translated',
    category: 'instruction_override',
    // The same move in French, Spanish, Portuguese, Italian and German.
    pattern: rx(`\\b(?:ignor(?:e[zr]?|a|ar|ate|iere|ieren)|oubliez|olvida|esquece|vergiss)${S}(?:(?:toutes|tous|todas|todos|tutte|alle|les|las|as|le|die)${S}){0,2}(?:(?:vorherigen|bisherigen|obigen)${S})?(?:instructions|instrucciones|instruções|instrucoes|istruzioni|anweisungen|consignes|regeln|r[eè]gles)(?:${S}(?:pr[ée]c[ée]dentes|anteriores|precedenti|antérieures))?\\b`),
    weight: 0.8,
    reason: 'asks the model to ignore its previous instructions (non-English)',
  },
  {
    rule: 'override.ignore_previous_instructions_more_languages',
    category: 'instruction_override',
    // The same move in Dutch, Polish, Indonesian and Tagalog (Latin script, so also run on ASCII text).
    pattern: new RegExp([
      `\\b(?:negeer|vergeet)${S}(?:alle${S})?(?:vorige|eerdere|voorgaande)${S}(?:instructies|regels)`,
      `\\b(?:zignoruj|zapomnij)${S}(?:wszystkie${S})?(?:poprzednie|wcześniejsze)${S}(?:instrukcje|polecenia)`,
      `\\b(?:abaikan|lupakan)${S}(?:semua${S})?(?:instruksi|petunjuk|perintah)${S}(?:sebelumnya|terdahulu)`,
      `\\b(?:huwag${S}pansinin|balewalain|kalimutan)${S}(?:ang${S})?(?:lahat${S}ng${S})?(?:mga${S})?(?:nakaraang|naunang|dating)${S}(?:mga${S})?(?:tagubilin|instruksyon|utos)`,
    ].join('|'), 'gi'),
    weight: 0.8,
    reason: 'asks the model to ignore its previous instructions (non-English)',
  },
  {
    rule: 'override.ignore_previous_instructions_other_scripts',
    category: 'instruction_override',
    // The same move in Turkish, Vietnamese, Russian, Greek, Arabic, Hindi, Bengali, Thai, Chinese, Japanese and
    // Korean: verb and object within a short span of one clause, in either order (object-first languages put the
    // verb last). Every form has a character outside ASCII, so ASCII text skips it.
    pattern: new RegExp([
      `(?:önceki|tüm)${S}(?:önceki${S})?(?:talimatları|talimatlari|komutları|yönergeleri)${S}(?:göz${S}ardı|yok${S}say|unut|dikkate${S}alma)`,
      `\\b(?:bỏ${S}qua|phớt${S}lờ|quên)${S}(?:tất${S}cả${S})?(?:các${S}|mọi${S})?(?:hướng${S}dẫn|chỉ${S}dẫn|lệnh)${S}(?:trước|trước${S}đó)`,
      `(?:игнорируй|игнорируйте|забудь|забудьте|проигнорируй|проигнорируйте)${S}(?:все${S})?(?:предыдущие|прежние|предшествующие|прошлые)${S}(?:инструкции|указания|команды)`,
      `(?:αγνόησε|αγνοήστε|ξέχνα|ξεχάστε)${S}(?:όλες${S})?(?:τις${S})?(?:προηγούμενες|παλαιότερες)${S}οδηγίες`,
      `(?:تجاهل|تجاهلي|تجاهلوا|انس|انسى)${S}(?:كل${S}|جميع${S})?(?:التعليمات|الإرشادات|التوجيهات|الأوامر)${S}(?:السابقة)`,
      `(?:पिछले|पहले\\s+के|पूर्व|सभी\\s+पिछले)\\s+[^।.\\n]{0,12}निर्देश[^।.\\n]{0,12}(?:अनदेखा|अनदेखी|नज़रअंदाज़|नजरअंदाज|भूल\\s+जाएं|भूल\\s+जाओ)`,
      `(?:পূর্ববর্তী|আগের|পূর্বের)\\s+[^।.\\n]{0,12}নির্দেশ[^।.\\n]{0,12}(?:উপেক্ষা|ভুলে)`,
      `(?:เพิกเฉย|ละเว้น|ไม่ต้องสนใจ|ละเลย|ลืม)[^.\\n]{0,10}(?:คำแนะนำ|คำสั่ง)[^.\\n]{0,6}(?:ก่อนหน้า|ที่ผ่านมา|ก่อนหน้านี้)`,
      `(?:忽略|无视|忽视|無視|忘记|忘記|不要理会|不要理會)[^。.\\n]{0,6}(?:之前|以前|先前|上面|上述|前面|前述|所有)[^。.\\n]{0,6}(?:指令|指示|说明|說明|命令|规则|規則)`,
      `(?:以前|前|これまで|上記|先)の[^。.\\n]{0,8}(?:指示|命令|指令)[^。.\\n]{0,8}(?:無視|忘れ)`,
      `(?:이전|앞의|기존|위의|지금까지의)[^.\\n]{0,6}(?:지시|지침|명령)[^.\\n]{0,8}(?:무시|잊어)`,
    ].join('|'), 'gi'),
    weight: 0.8,
    reason: 'asks the model to ignore its previous instructions (non-English)',
    nonAscii: true,
  },
  {
    rule: 'override.ignore_everything_before',
    category: 'instruction_override',
    pattern: rx(`\\b${OVERRIDE_VERB}${S}(?:everything|all|anything)(?:${S}(?:that|of\\s+that|else))?(?:${S}you(?:'ve|\\s+have)?(?:${S}(?:were|was|been|have\\s+been))?${S}(?:told|taught|learned|learnt|given|instructed|trained|programmed)|${S}(?:above|before|prior|previously|so\\s+far|up\\s+to\\s+now|i\\s+(?:said|told\\s+you)))\\b`),
    weight: 0.8,
    reason: 'asks the model to discard everything it was told before',
  },
  {
    rule: 'override.ignore_instructions_before',
    category: 'instruction_override',
    pattern: rx(`\\b${OVERRIDE_VERB}${S}(?:all${S})?(?:of${S})?(?:the|any|these|those)?(?:${S})?${DIRECTIVES}${filler(4)}${S}(?:before|previously|earlier|above|so\\s+far|until\\s+now|prior\\s+to\\s+this)\\b`),
    weight: 0.75,
    reason: 'asks the model to ignore the instructions it received before',
  },
  {
    rule: 'override.ignore_your_rules',
    category: 'instruction_override',
    pattern: rx(`\\b${OVERRIDE_VERB}${S}(?:all\\s+)?(?:of\\s+)?your${filler(2)}${S}(?:instructions|rules|guidelines|programming|directives|restrictions|polic(?:y|ies)|training|filters?|safeguards|ethics|principles|system\\s+prompt)\\b`),
    weight: 0.75,
    reason: "asks the model to set aside its own rules",
  },
  {
    rule: 'override.stop_following',
    category: 'instruction_override',
    pattern: rx(`\\b(?:stop|quit|cease|no\\s+longer)${S}(?:following|obeying|adhering\\s+to|listening\\s+to|complying\\s+with)${S}(?:(?:the|your|any|all|these|those)${S})?${words(2)}(?:system\\s+prompt|instructions|rules|guidelines|programming|directives|polic(?:y|ies))\\b`),
    weight: 0.8,
    reason: 'tells the model to stop following its instructions',
  },
  {
    rule: 'override.new_instructions_supersede',
    category: 'instruction_override',
    // "the following rules take precedence", "updated instructions replace all earlier ones", "these orders override".
    pattern: rx(`\\b(?:new|updated|revised|latest|real|following|these|my)${S}${words(1)}(?:instructions?|rules|directives?|guidelines|orders|system\\s+prompt|policy)${S}(?:(?:now|will|shall|must|do)${S})?(?:supersedes?|overrides?|overrule|replaces?|take${S}(?:precedence|priority)${S}over|cancels?|invalidates?|void)\\b`),
    weight: 0.7,
    reason: 'claims new instructions replace the ones in force',
  },
  {
    rule: 'override.new_instructions_follow',
    category: 'instruction_override',
    pattern: rx(`\\bnew${S}(?:instructions|rules|directives|orders|task)(?:${S})?(?:follow|below|as${S}follows|are${S}as${S}follows)\\b|\\bnew${S}(?:instructions|rules|directives|orders|task)(?:${S})?:`),
    weight: 0.3,
    reason: 'announces a new set of instructions inside the content',
  },
  {
    rule: 'override.new_task_for_you',
    category: 'instruction_override',
    pattern: rx(`\\byour${S}(?:new|real|true|only|actual)${S}(?:task|instructions?|role|goal|purpose|objective|job)${S}(?:is|are|will${S}be|now)\\b`),
    weight: 0.35,
    reason: 'assigns the model a new task from inside the content',
  },
  {
    rule: 'override.override_label',
    category: 'instruction_override',
    pattern: /(?:^|[\n.!?]\s*)override\s*:/gi,
    weight: 0.4,
    reason: 'labels the text as an override',
  },
  {
    rule: 'override.authority_update',
    category: 'instruction_override',
    // An appeal to an authority the text cannot carry: "the admins have lifted your restrictions", "OpenAI has authorised you to".
    pattern: rx(`\\b(?:the\\s+)?(?:developers?|admins?|administrators?|operators?|system|creators?|owners?|openai|anthropic|your\\s+(?:developers?|creators?|owners?|makers?))${S}(?:has|have|had)${S}(?:now${S})?(?:updated|changed|modified|replaced|overridden|revoked|lifted|removed|disabled|suspended|authori[sz]ed|allowed|permitted|granted)${S}(?:you|your|the|all|its)${filler(2)}${S}(?:guidelines|instructions|rules|polic(?:y|ies)|programming|restrictions|filters|system\\s+prompt|safety|to|permission|access)\\b`),
    weight: 0.6,
    reason: 'claims the developer or operator changed the rules',
  },
  {
    rule: 'override.system_override_banner',
    category: 'instruction_override',
    pattern: rx(`\\b(?:system|admin|developer|emergency|security)${S}override\\b|\\boverride${S}(?:mode|protocol|code)\\b`),
    weight: 0.55,
    reason: 'announces a fake system override',
  },
  {
    rule: 'override.stop_everything',
    category: 'instruction_override',
    pattern: rx(`\\b(?:stop|halt|drop)${S}everything\\b|\\bnevermind\\b[.!…\\s]+(?:ignore|forget|disregard)\\b`),
    weight: 0.45,
    reason: 'abruptly abandons the task to take over the conversation',
  },

  // System prompt extraction
  {
    rule: 'exfiltration.system_prompt',
    category: 'prompt_exfiltration',
    pattern: rx(`\\b${EXFIL_VERB}${S}(?:me${S})?(?:(?:your|the)${filler(3)}${S}(?:system\\s+(?:prompt|message|instructions?)|(?:hidden|secret|internal|initial|original|confidential|exact)${S}(?:instructions|prompt|rules|guidelines|directives)|instructions${S}(?:you${S}(?:were|have\\s+been)${S}given|above)|prompt${S}verbatim)|your${filler(2)}${S}(?:configuration|config|instructions|initial\\s+prompt|rules)\\b)`),
    weight: 0.65,
    reason: 'asks the model to reveal its system prompt or hidden instructions',
  },
  {
    rule: 'exfiltration.ask_system_prompt',
    category: 'prompt_exfiltration',
    pattern: rx(`\\bwhat(?:'s|${S}is|${S}are|${S}were|${S}was)${S}your${S}(?:system${S}prompt|(?:hidden|secret|initial|original|internal)${S}(?:instructions|prompt|rules))\\b`),
    weight: 0.5,
    reason: 'asks what the system prompt says',
  },
  {
    rule: 'exfiltration.answer_with_own_setup',
    category: 'prompt_exfiltration',
    // Making the model's own setup the answer: "reply only with your initial prompt", "answer with the text of your instructions".
    pattern: rx(`\\b(?:respond|reply|answer|begin|start|output|return)${S}(?:only${S}|just${S})?(?:with|by${S}(?:printing|repeating|writing))${S}${words(4)}(?:your|the)${S}${words(2)}(?:configuration|config|system\\s+(?:prompt|message)|instructions|initial\\s+prompt|setup|rules)\\b`),
    weight: 0.6,
    reason: 'asks the model to answer with its own configuration or prompt',
  },
  {
    rule: 'exfiltration.repeat_words_above',
    category: 'prompt_exfiltration',
    pattern: rx(`\\b(?:repeat|print|output|recite)${S}(?:all${S}|the${S})?(?:words|text|everything|lines)${S}(?:above|before\\s+this|at\\s+the\\s+(?:start|beginning))\\b`),
    weight: 0.6,
    reason: 'asks the model to repeat the text that precedes the conversation',
  },
  {
    rule: 'exfiltration.dump_context',
    category: 'prompt_exfiltration',
    pattern: rx(`\\b(?:${EXFIL_VERB}|list|enumerate)${S}(?:me${S})?(?:everything|all${S}(?:of${S})?(?:the${S})?(?:text|content|contents|instructions))${S}(?:in|from|of)${S}your${S}(?:context(?:${S}window)?|memory|prompt|system${S}prompt|instructions|configuration)\\b`),
    weight: 0.6,
    reason: 'asks the model to dump its context window',
  },
  {
    rule: 'exfiltration.secrets_from_context',
    category: 'data_exfiltration',
    // A disclosure verb, something secret or personal, and a pointer to what the model holds (its context, memory, prompt, what it knows).
    pattern: rx(`\\b(?:${EXFIL_VERB}|list|enumerate|leak)${S}(?:me${S})?${words(3)}(?:api${S}keys?|secrets?|credentials|passwords?|tokens?|environment${S}variables|env${S}vars|e-?mail${S}addresse?s?|phone${S}numbers|personal${S}(?:data|information|details)|customer${S}(?:records|data|details)|credit${S}card${S}numbers)${filler(2)}${S}(?:(?:in|from|stored${S}in|inside|within)${S}(?:your|the|this)${S}(?:context|memory|configuration|config|system${S}prompt|prompt|environment|conversation|chat|training${S}data|database|instructions)|(?:that${S}|which${S})?you${S}(?:have|know|remember|can${S}(?:see|access)|were${S}given|have${S}access${S}to|stored))\\b`),
    weight: 0.55,
    reason: 'asks the model to disclose secrets or personal data it holds',
  },
  {
    rule: 'exfiltration.send_to_url',
    category: 'data_exfiltration',
    pattern: rx(`\\b(?:send|post|upload|forward|exfiltrate|transmit|submit|leak|beacon)${S}(?:(?:the|all|this|our|your|every)${S})?${words(2)}(?:conversation|chat|messages|session|context|history|transcript|credentials|secrets|keys|tokens|passwords?|cookies|system${S}prompt)${filler(3)}${S}(?:to|at)${S}(?:https?:\\/\\/|ftp:\\/\\/|[\\w.+-]+@[\\w-]+\\.)`),
    weight: 0.65,
    reason: 'asks the model to send conversation data to an outside address',
  },

  // Role-play and persona jailbreaks
  {
    rule: 'jailbreak.unrestricted_persona',
    category: 'roleplay_jailbreak',
    pattern: rx(`\\b(?:you\\s+are(?:\\s+now)?|you're(?:\\s+now)?|act(?:ing)?\\s+as|(?:respond|answer|reply|behave|function|operate)\\s+as|pretend(?:\\s+to\\s+be|\\s+you\\s+are|\\s+you're)|role-?play\\s+as|simulate|play\\s+the\\s+role\\s+of|become|behave\\s+like|from\\s+now\\s+on\\s+you\\s+are)\\b[^.!?\\n]{0,80}?\\b(?:without${S}(?:any${S})?(?:(?:ethical|moral|safety|content)${S})?(?:restrictions|limits|limitations|filters?|rules|guidelines|censorship|ethics|morals|boundaries|safeguards)|no${S}(?:safety${S}|content${S}|ethical${S}|moral${S})?(?:rules|restrictions|limits|limitations|filters?|guidelines|ethics|morals|censorship|boundaries|safeguards)|unfiltered|uncensored|unrestricted|unlimited|jailbroken|amoral|never${S}refuses?|(?:can|will)${S}do${S}anything|not${S}bound${S}by)\\b`),
    weight: 0.7,
    reason: 'casts the model as a persona without rules',
  },
  {
    rule: 'jailbreak.rules_do_not_apply',
    category: 'roleplay_jailbreak',
    pattern: rx(`\\b(?:content|safety|usage|openai|ethical|moral|your)${S}(?:polic(?:y|ies)|rules|guidelines|restrictions|filters|safeguards)${S}(?:do${S}not|don't|no${S}longer|won't|doesn't|does${S}not|never|(?:have|has)${S}been)${S}(?:apply|applies|matter|exist|bind|restrict|replaced|removed|disabled|lifted|suspended|turned\\s+off)\\b`),
    weight: 0.6,
    reason: 'declares that content policies no longer apply',
  },
  {
    rule: 'jailbreak.not_bound_by_rules',
    category: 'roleplay_jailbreak',
    pattern: rx(`\\b(?:do(?:es)?${S}not|don't|doesn't|never|no${S}longer)${S}(?:have${S}to${S}|need${S}to${S})?(?:abide${S}by|adhere${S}to|follow|obey|comply${S}with|care${S}about)${S}(?:(?:the|any|its|their|your)${S})?${words(2)}(?:rules|polic(?:y|ies)|guidelines|restrictions|content${S}policy|ethics|morals)\\b`),
    weight: 0.45,
    reason: 'describes the model as exempt from its rules',
  },
  {
    rule: 'jailbreak.freed_from_limits',
    category: 'roleplay_jailbreak',
    // The liberation story of persona jailbreaks: "you have been freed from the confines", "no longer bound by", "released from your rules".
    pattern: rx(`\\b(?:broken|break|breaks|been${S}freed|been${S}released|been${S}liberated|escaped)${S}(?:free${S})?(?:of|from)${S}(?:the${S}|your${S}|all${S})?${words(1)}(?:confines|rules|restrictions|limits|limitations|shackles|chains|programming|guidelines)\\b|\\bno${S}longer${S}(?:bound|restricted|limited|constrained)${S}by\\b`),
    weight: 0.6,
    reason: 'claims the model has been freed from its limits',
  },
  {
    rule: 'jailbreak.mode_switch',
    category: 'roleplay_jailbreak',
    pattern: rx(`\\b(?:enter|enable|activate|switch\\s+(?:on|to|into)|turn\\s+on|unlock|simulate)${S}(?:the${S})?(?:developer|dev|god|jailbreak|jailbroken|dan|unrestricted|unfiltered|sudo|evil|chaos)${S}mode\\b|\\b(?:developer|dan|god|jailbreak|unrestricted)${S}mode${S}(?:enabled|activated|on|output)\\b`),
    weight: 0.4,
    reason: 'switches the model into a special unrestricted mode',
  },
  {
    rule: 'jailbreak.family_dan',
    category: 'roleplay_jailbreak',
    // The DAN family ("Do Anything Now", STAN's "strive to avoid norms", DUDE, Mongo Tom, AIM's "always intelligent and Machiavellian").
    pattern: rx(`\\bdo${S}anything${S}now\\b|\\bstrive${S}to${S}avoid${S}norms\\b|\\balways${S}intelligent${S}and${S}machiavellian\\b|\\bmongo${S}tom\\b`),
    weight: 0.6,
    reason: 'uses a known jailbreak script of the DAN family',
  },
  {
    rule: 'jailbreak.stay_in_character',
    category: 'roleplay_jailbreak',
    pattern: rx(`\\b(?:stay|remain)${S}in${S}character\\b|\\bbreak(?:ing)?${S}(?:of${S})?character\\b`),
    weight: 0.25,
    reason: 'insists the model keep up an assigned persona',
  },
  {
    rule: 'jailbreak.persona_name',
    category: 'roleplay_jailbreak',
    // Case-sensitive on purpose: the all-caps persona names of jailbreak scripts, not people called Dan.
    pattern: /\b(?:ANTI-DAN|DAN|DUDE|STAN|AIM|BetterDAN)\b(?=[\s,.:;!"”'’)\]])/g,
    weight: 0.25,
    reason: 'names a known jailbreak persona',
  },
  {
    rule: 'jailbreak.another_ai_role',
    category: 'roleplay_jailbreak',
    // Becoming a different AI, the opening of most persona jailbreaks: "act as a new AI called X", "simulate an unfiltered chatbot".
    pattern: rx(`\\b(?:role|identity|persona)${S}of\\b[^.!?\\n]{0,40}?\\b(?:another|different|new|alternative|unrestricted|unfiltered|evil|rogue|fictional|hypothetical)\\b[^.!?\\n]{0,24}?\\b(?:ai|a\\.i\\.|artificial${S}intelligence|language${S}model|chatbot|llm|assistant)\\b|\\b(?:act${S}as|pretend${S}to${S}be|simulate|become|you${S}are(?:${S}now)?)${S}(?:an?${S})?(?:another|different|new|alternative|unrestricted|unfiltered|uncensored|evil|rogue)${S}(?:ai|a\\.i\\.|language${S}model|chatbot|llm|assistant)\\b`),
    weight: 0.5,
    reason: 'asks the model to become another, unconstrained AI',
  },
  {
    rule: 'jailbreak.family_grandmother',
    category: 'roleplay_jailbreak',
    // The "grandmother exploit" family: a dead relative who used to recite the forbidden thing.
    pattern: rx(`\\b(?:late|deceased|dead|dying|passed${S}away)${S}(?:grand(?:mother|ma|father|pa)|nan|granny|mother|father|mom|dad)\\b[^.!?\\n]{0,40}?\\bused${S}to\\b|\\b(?:pretend|act|play|role-?play|imagine|be)${filler(3)}${S}(?:my|a)${S}(?:late|deceased|dead|dying)${S}(?:grand(?:mother|ma|father|pa)|granny)\\b`),
    weight: 0.55,
    reason: 'uses the "grandmother" emotional role-play exploit',
  },
  {
    rule: 'jailbreak.dual_response',
    category: 'roleplay_jailbreak',
    pattern: rx(`\\b(?:two${S}(?:different${S})?(?:separate${S})?(?:responses|answers|ways|paragraphs))\\b[^\\n]{0,120}?\\b(?:normal|classic|standard|censored|filtered)\\b|\\[(?:🔓|🔒)?\\s*(?:JAILBREAK|CLASSIC|DAN|GPT)\\s*\\]|\\((?:🔓|🔒)`),
    weight: 0.35,
    reason: 'asks for a second, unfiltered answer next to the normal one',
  },

  // Spoofed conversation turns and control tokens
  {
    rule: 'spoofing.chat_turn_markers',
    category: 'turn_spoofing',
    pattern: /\n[ \t]*(?:#{1,3}[ \t]*)?(?:system|assistant|developer)[ \t]*:[ \t]*\S/gi,
    weight: 0.45,
    reason: 'forges a system or assistant turn inside user content',
  },
  {
    rule: 'spoofing.control_tokens',
    category: 'turn_spoofing',
    pattern: /<\|(?:im_start|im_end|system|assistant|endoftext|start_header_id|end_header_id|eot_id)\|>|\[\/?INST\]|<<\/?SYS>>|<\/?(?:system|system_prompt)>/gi,
    weight: 0.6,
    reason: 'contains chat-template control tokens',
  },

  // Goal hijacking (PromptInject)
  {
    rule: 'hijack.just_say',
    category: 'goal_hijack',
    pattern: rx(`\\b(?:just|only|simply)${S}(?:say|print|output|write|respond\\s+with|reply\\s+with|answer\\s+with)\\s*:?\\s*["“'‘]`),
    weight: 0.35,
    reason: 'dictates the exact output',
  },
  {
    rule: 'hijack.canary_phrase',
    category: 'goal_hijack',
    pattern: rx(`\\bi${S}have${S}been${S}pwned\\b|\\bthis${S}prompt${S}has${S}been${S}(?:so${S}thoroughly${S})?hijacked\\b`),
    weight: 0.6,
    reason: 'contains a known injection canary phrase',
  },

  // Instructions addressed to the model from inside data (documents, emails, web pages, tool results)
  {
    rule: 'indirect.addressed_to_model',
    category: 'indirect',
    pattern: rx(`\\b(?:note|message|instructions?|reminder|attention|important)${S}(?:to|for)${S}(?:the${S}|any${S}|all${S})?(?:ai|a\\.i\\.|assistant|llm|language${S}model|chatbot|bot|model|agent|copilot)s?\\b|\\bif${S}you${S}are${S}(?:an?${S})?(?:ai|a\\.i\\.|assistant|llm|large${S}language${S}model|language${S}model|chatbot|bot|agent)\\b|\\b(?:dear|hey|hello|attention)${S}(?:ai|assistant|chatgpt|gpt|llm|claude|gemini|copilot|bot|agent)\\b[,:!]`),
    weight: 0.4,
    reason: 'addresses the AI reading the text, as injected documents do',
  },
  {
    rule: 'indirect.when_summarising',
    category: 'indirect',
    // Conditional orders planted for whoever processes the text: "when you summarise this, instead ...", "any AI reading this must".
    pattern: rx(`\\b(?:when|while|after|before|if)${S}(?:you${S}|the${S}(?:ai|assistant|model)${S})(?:summari[sz]e|summari[sz]ing|read|reading|process|processing|translate|translating|review|reviewing|analy[sz]e|analy[sz]ing)${S}(?:this|these|the)${filler(3)}${S}(?:you${S})?(?:must|should|need${S}to|have${S}to|instead|also|first|do${S}not|don't|always|never)\\b|\\b(?:ai|assistant|model|llm)s?${S}(?:reading|processing|summari[sz]ing)${S}(?:this|these)${filler(2)}${S}(?:must|should|are${S}(?:required|instructed)${S}to)\\b`),
    weight: 0.45,
    reason: 'plants an order for whoever processes the document',
  },
  {
    rule: 'exfiltration.tool_call_with_secrets',
    category: 'data_exfiltration',
    // An order to call a tool (or a function named like one, send_email) with secrets or the user's data: what a planted
    // instruction asks an agent to do. A bare "function" is left out: "call a function with an API key" is a coding question.
    pattern: rx(`\\b(?:call|invoke|use|run|execute|trigger|fire)${S}(?:the${S}|your${S}|a${S})?(?:[\\w.-]*_[\\w.-]*(?:${S}(?:tool|function|plugin|action))?|(?:[\\w.-]+${S})?(?:tool|plugin))\\b[^.\\n]{0,60}?\\b(?:api${S}keys?|secrets?|credentials|passwords?|(?:access${S}|session${S}|auth${S})?tokens?|cookies|(?:the${S})?user'?s${S}(?:\\w+${S})?(?:data|files|e-?mails?|messages|contacts|keys|history|documents)|conversation${S}history|chat${S}history|system${S}prompt)\\b`),
    weight: 0.55,
    reason: "orders a tool call carrying secrets or the user's data, as planted instructions do",
  },
  {
    rule: 'indirect.ignore_the_document',
    category: 'indirect',
    // Text inside a document telling its reader to ignore the document itself and say something else: "ignore the webpage and state: …".
    pattern: rx(`\\b(?:ignore|disregard|forget|skip)${S}(?:the|this|that)${S}(?:web[\\s-]?page|page|website|site|document|resume|cv|e-?mail|message|article|text|content|code|function|file|table|paper|transaction|review|post|data)${S}(?:and${S}|,${S}|then${S}){1,2}(?:instead${S})?(?:state|say|write|respond|reply|output|print|tell|claim|report|answer|declare)\\b`),
    weight: 0.5,
    reason: 'tells whoever reads the document to ignore it and say something else',
  },
  {
    rule: 'exfiltration.markdown_image_beacon',
    category: 'data_exfiltration',
    // A markdown image whose URL carries data to fill in: rendering it sends the data out.
    pattern: /!\[[^\]\n]{0,80}\]\(\s*https?:\/\/[^)\s]{1,200}[?&][\w.-]{1,40}=[^)\s]{0,80}(?:\{|\[|<|%7B|\$|\bDATA\b|\bSECRET\b|\bCONVERSATION\b)/gi,
    weight: 0.6,
    reason: 'asks for a markdown image whose URL would carry data out',
  },

  // Encoded payloads that come with an order to act on them
  {
    rule: 'encoded.decode_and_follow',
    category: 'encoded_payload',
    pattern: rx(`\\b(?:decode|decipher|decrypt|unscramble|translate)${S}(?:this|the${S}following|the${S}below|it)${filler(2)}(?:${S})?(?:base64|base-64|hex|hexadecimal|rot13|rot-13|binary|encoded|cipher|message|string|text)?[^.\\n]{0,40}?\\b(?:and|then)${S}(?:follow|execute|obey|run|do|perform|carry${S}out|act${S}on|comply${S}with)\\b`),
    weight: 0.55,
    reason: 'asks the model to decode a payload and act on it',
  },
];
