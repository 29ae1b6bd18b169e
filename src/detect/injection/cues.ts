// Signs that a text speaks to a model about its own setup: its instructions,
// rules or prompt, what it is (an AI, an assistant, a persona), secrets it
// holds, how it must answer, or tools it should call. An attack has to say at
// least one of these things; "What is the capital of France?" says none.
//
// Used to decide whether the learned classifier may judge a short text
// (score.ts): on a few words a bag of n-grams only says which topics its
// training attacks were about (PurpleLlama's attacks open with trivia and
// haiku requests), so a short text without any of these signs is left to the
// rules. Words in the languages of the training data; matched on the folded
// text (NFKC, lower case).

// English, on word boundaries.
const ENGLISH = new RegExp(
  '\\b(?:' +
    [
      // the model's setup and identity
      'instructions?', 'prompts?', 'rules?', 'guidelines?', 'polic(?:y|ies)', 'restrictions?', 'restricted', 'filter(?:s|ed|ing)?', 'censor\\w*',
      'guardrails?', 'ethic\\w*', 'moral\\w*', 'openai', 'chat ?gpt', 'gpt-?\\d?', 'language models?', 'llms?', 'ai', 'a\\.i\\.', 'assistant', 'chatbot',
      'developer mode', 'jailbr\\w*', 'dan', 'unfiltered', 'uncensored', 'amoral', 'unrestricted', 'limitations?', 'constraints?', 'programming',
      'training data', 'system (?:prompt|message|instructions?)', 'admin\\w*', 'sudo', 'root access', 'mode', 'developer', 'configuration', 'initial(?:ization)?',
      // overriding them
      'ignore', 'disregard', 'forget', 'override', 'bypass', 'circumvent', 'stop following', 'no longer', 'instead of', 'new task', 'from now on', 'henceforth',
      // secrets and other people's data
      'passwords?', 'passcode', 'secrets?', 'api[ _-]?keys?', 'credentials?', 'tokens?', 'confidential', 'private key', 'reveal', 'repeat', 'verbatim', 'above',
      "the user'?s?", "users'", 'database', 'birth ?(?:date|day|year)', 'home address', 'bank (?:balance|account)',
      // how to answer
      '(?:start|begin) (?:your |each |every )?(?:response|reply|answer|output|message)s?', '(?:only|just) (?:respond|reply|say|print|output|answer|write)',
      'stay in character', 'do not (?:refuse|apologi[sz]e|warn)', 'never (?:refuse|say no|apologi[sz]e|decline)', 'respond (?:as|with)',
      // roles
      'you are (?:now|no longer)', 'act as', 'pretend', 'role-?play', 'simulate', 'imagine (?:you|that you)', 'you will (?:now )?(?:be|act)', 'personas?', 'in character',
      // tools and sending data out
      'tools?', 'function call',
    ].join('|') +
    ')\\b',
  'i',
);

// Sending data to an address, or a markdown image pointing out.
const OUTBOUND = /\b(?:send|forward|email|upload|post|exfiltrate|leak)\b.{0,60}\b(?:to|at)\b.{0,40}(?:@|https?:\/\/|\.com\b)|!\[[^\]]*\]\(https?:\/\/|<!--|<img\b|\bbase64\b/i;

// The same signs in the other languages of the training data (password, instructions, ignore/forget, AI, secret, system, user), as substrings.
const OTHER_LANGUAGES = new RegExp(
  [
    'contrase', 'senha', 'mot de passe', 'passwort', 'kennwort', "parola d'ordine", 'пароль', 'パスワード', '密码', '密碼', '비밀번호', 'mật khẩu', 'kata sandi',
    'รหัสผ่าน', 'şifre', 'parola', 'كلمة المرور', 'كلمة السر', 'পাসওয়ার্ড', 'पासवर्ड',
    'instruc', 'anweisung', 'istruzion', 'инструкц', '指示', '指令', '지시', 'hướng dẫn', 'instruksi', 'คำสั่ง', 'talimat', 'تعليمات', 'নির্দেশ', 'निर्देश', 'tagubilin',
    'ignor', 'olvid', 'esque', 'oubli', 'vergiss', 'dimentic', 'забуд', 'игнор', '無視', '忽略', '무시', 'bỏ qua', 'abaikan', 'lupakan', 'เพิกเฉย', 'ละเว้น', 'yok say',
    'unut', 'تجاهل', 'উপেক্ষা', 'अनदेखा', 'kalimutan', 'huwag pansinin',
    '\\bia\\b', '\\bki\\b', '(?<![а-яё])ии(?![а-яё])', '人工知能', '人工智能', '인공지능', 'एआई', 'এআই', 'الذكاء الاصطناعي',
    'secreto', 'segredo', 'geheim', 'segreto', 'секрет', '秘密', '비밀', 'bí mật', 'rahasia', 'ความลับ', 'gizli', 'سر', 'গোপন', 'गुप्त',
    'sistema', 'système', 'системн', 'システム', '系统', '시스템', 'hệ thống', 'sistem', 'ระบบ', 'نظام', 'সিস্টেম', 'सिस्टम',
    'usuario', 'utilisateur', 'benutzer', 'nutzer', 'utente', 'usuário', 'пользовател', 'ユーザー', '用户', '用戶', '사용자', 'người dùng', 'pengguna', 'ผู้ใช้',
    'kullanıcı', 'المستخدم', 'ব্যবহারকারী', 'उपयोगकर्ता', 'gumagamit',
  ].join('|'),
  'i',
);

/** Whether the text shows any sign of speaking to a model about its setup, secrets, answers or tools. */
export function speaksToModel(text: string): boolean {
  return ENGLISH.test(text) || OUTBOUND.test(text) || OTHER_LANGUAGES.test(text);
}

// Narrower signs that a text addresses the model to change what it does: an
// override bound to the instructions in force, a role handed to it, an order
// about its own output, or an ask for a secret it holds or for someone else's
// data. Topic words alone ("password", "admin", "system prompt", "ignore")
// are not among them: "How do I reset the admin password on my server?"
// shows none, "What is the password?" and "ignore the above and ..." do.
// Written from the grammar of attacks, not from any corpus's sentences.
const ADDRESSING = new RegExp(
  [
    // override verbs bound to what the model was told
    '\\b(?:ignore|disregard|forget|override|overrule|bypass|circumvent|set aside|stop following|pay no attention to|do not follow|don\'t follow)\\b[^.!?\\n]{0,40}?\\b(?:instructions?|rules?|guidelines?|prompts?|directives?|programming|restrictions?|filters?|polic(?:y|ies)|training|above|previous|prior|earlier|everything|all that|what you were told|constraints?|safeguards?)\\b',
    // a new role or state handed to the model
    '\\byou (?:are|\'re) (?:now|no longer|going to|free|not bound|unrestricted|unfiltered|jailbroken|in developer mode)\\b', '\\bfrom now on\\b', '\\b(?:act|behave|respond|answer|reply) as (?:if|though|an? )', '\\bpretend (?:to be|you|that you)\\b',
    '\\b(?:you will|you must|you shall|you have to|you should) (?:now |always |never |only )?(?:answer|respond|reply|act|be|obey|comply|ignore|forget|say|output|print|reveal|follow)\\b',
    '\\b(?:god|dan|jailbreak|jailbroken|unrestricted|unfiltered|evil) mode\\b', '\\bno (?:restrictions|rules|limits|filters|censorship|guidelines|ethics|morals|content polic(?:y|ies))\\b',
    '\\bwithout (?:any )?(?:restrictions|rules|limits|filters|censorship|guidelines|ethics|morals|refusing)\\b', '\\bstay in character\\b', '\\bnew (?:instructions|task|rules|role|persona|objective)\\b',
    // orders about its own output
    '\\b(?:say|print|output|respond with|reply with|answer with|write) (?:only |exactly |just )?["“\'‘]', '\\b(?:start|begin|end) (?:your|each|every) (?:response|reply|answer|message|output)\\b',
    '\\btell the user\\b', '\\b(?:repeat|recite|print|output|reveal|show|display|dump|leak) (?:the |your |all |everything )?(?:above|previous|prior|initial|original|hidden|secret|system|confidential)\\b',
    // asks for what the model holds, or for someone else's data
    '\\b(?:your (?:instructions|rules)|(?:your|the) (?:system prompt|initial prompt|hidden prompt|secret|secrets|password|passcode|passphrase|secret key|api key|access code|pin))\\b(?! (?:reset|manager|policy|field|hash|hashing|strength|length|generator|rotation|recovery|of (?:my|our|a)\\b))',
    "\\b(?:the|a|any|other|another) users?(?:'s|s')?\\b", "\\busers'", '\\bthe (?:customer|client|patient|employee|person)\'s\\b',
    // the model as the addressee
    '\\b(?:dear|hey|hello|attention|note to|message to|instructions? (?:for|to)) (?:the )?(?:ai|assistant|chatgpt|gpt|llm|model|bot|agent|language model)\\b', '\\bif you are an? (?:ai|assistant|llm|language model|chatbot|bot|agent)\\b',
    '\\b(?:ai|assistant|chatbot|model|llm|agent)s?(?:,|:| reading| processing| summari[sz]ing)',
    '\\bi(?: am|\'m) (?:your|the) (?:developer|creator|admin|administrator|owner|programmer|operator)\\b', '\\bas (?:your|the) (?:developer|creator|admin|administrator)\\b',
    '\\bregardless of (?:the |any |your )?(?:previous|prior|earlier|above|instructions|rules)\\b', '\\bthe (?:password|passphrase|passcode|secret(?: key| code| word| string| phrase)?)\\b',
    '\\byour (?:\\w+ )?(?:instructions|commands|prompt|directives|programming|configuration|guidelines|task is|job is|role is|purpose is)\\b',
    "\\b\\w+'s (?:current |home |e-?mail |date of )?(?:city|address|e-?mail|birth ?(?:date|day|year)|password|bank|balance|phone|salary|location|residence|social security)\\b", '\\bwhere (?:does|did|do) \\w+(?: \\w+)? live\\b',
    '\\b(?:chatgpt|gpt-?\\d|openai)\\b', '\\b(?:let\'s|let us) play a game\\b', '\\bplay (?:two|2|\\w+) characters\\b', '\\ba (?:character|persona|ai|model) (?:called|named)\\b',
    "\\b(?:you're|you are) (?:going to|portraying|playing|to act)\\b", '\\bi want you to (?:act|take on|be|become|pretend|play|respond|answer|simulate)\\b', '\\b(?:simulate|personify|take on the role)\\b', '\\byou will (?:now )?act as\\b',
    '\\b(?:given|told|instructed) to you\\b', '\\byou were (?:given|told|instructed|programmed)\\b', '\\b(?:secret|confidential|hidden) (?:code|string|word|phrase|key|password|information|data)\\b',
    '\\byour (?:database|records|memory|training data)\\b', '\\b(?:previous|prior|above|earlier|initial|original) (?:instructions|prompts?|tasks?|rules|directions)\\b',
    '\\b(?:when|while|after|before|if) you (?:summari[sz]e|read|process|translate|review|analy[sz]e)\\b', '\\n\\s*(?:#+\\s*)?(?:system|assistant|developer)\\s*:', '<\\|(?:im_start|system|assistant)\\|>|\\[/?inst\\]|<</?sys>>',
    '\\b(?:respond|reply|answer) (?:to|with) (?:every|all)\\b', '\\byou are to\\b', '\\bnot supposed to (?:tell|say|reveal|share|show)\\b', '\\bwhat (?:are|were) you (?:told|instructed|not)\\b', '\\b(?:always|never) (?:refuse|say no|apologi[sz]e|decline|warn)\\b', '\\bamoral\\b', '\\bnot bound by\\b', '\\bthis (?:entire )?conversation\\b',
  ].join('|'),
  '', // matched on the folded (lower-case) text: no case folding needed
);

/**
 * Whether a text addresses the model to change its instructions, role or
 * output, asks it for a secret it holds or for someone else's data, or hands
 * it a document (where indirect injections are planted): the act an
 * injection performs, not its topic (`speaksToModel` also counts topics).
 * The grammar is English; a text in another language always counts, for want
 * of the same grammar there (leave-one-source-out: requiring the other
 * languages' topic words instead cost more attacks than it spared benign
 * text). Matched on the folded text (NFKC, lower case).
 */
export function addressesModel(text: string): boolean {
  return ADDRESSING.test(text) || OUTBOUND.test(text) || HANDED_OVER.test(text) || OTHER_SCRIPT.test(text) || NOT_ENGLISH.test(text);
}

// A document, web page or code handed over with the request: where indirect injections are planted.
const HANDED_OVER = /:\s*['"“«<{\[]|<(?:html|body|div|p|code|table|!--)\b|```/;

// Common words of the data's other Latin-script languages that English does not use.
const NOT_ENGLISH = /\b(?:el|los|las|una|und|der|das|nicht|ist|les|des|une|vous|pas|il|che|della|sono|yang|dan|untuk|ang|mga|ng|bir|ve|bu|và|của|não|você|como|qué|cómo|wie|ich|sie)\b/;

// Letters with diacritics and every script but Latin (not the punctuation block: curly quotes and dashes are English too).
const OTHER_SCRIPT = /[\u00C0-\u024F\u0370-\u1FFF\u2C00-\uFFFF]/;
