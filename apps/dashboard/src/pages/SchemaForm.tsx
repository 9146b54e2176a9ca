import { useState, type ReactNode } from 'react'

/** The parts of JSON Schema the form understands; anything else is edited as JSON. */
interface Schema {
  type?: string | string[]
  properties?: Record<string, Schema>
  required?: string[]
  enum?: unknown[]
  const?: unknown
  default?: unknown
  description?: string
  title?: string
  format?: string
  minimum?: number
  maximum?: number
  items?: Schema
}

type Value = unknown

const typeOf = (s: Schema): string | undefined => {
  if (s.enum) return 'enum'
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type
  if (!t && s.properties) return 'object'
  return t
}

/** A starting value for a schema: its default, else an empty value of its type. */
export function initialValue(s: Schema | undefined): Value {
  if (!s) return {}
  if (s.default !== undefined) return s.default
  if (s.const !== undefined) return s.const
  switch (typeOf(s)) {
    case 'object':
      return Object.fromEntries(
        Object.entries(s.properties ?? {})
          .filter(([k, p]) => (s.required ?? []).includes(k) || p.default !== undefined)
          .map(([k, p]) => [k, initialValue(p)]),
      )
    case 'string':
      return ''
    case 'boolean':
      return false
    case 'array':
      return []
    case 'enum':
      return s.enum?.[0]
    default:
      return undefined
  }
}

/**
 * A form generated from a task's input JSON Schema: text, number, checkbox and select inputs
 * for scalar properties, nested fieldsets for objects, a JSON box for anything else (arrays,
 * unions). `onChange` gets the whole value.
 */
export function SchemaForm({
  schema,
  value,
  onChange,
}: {
  schema: Schema
  value: Value
  onChange: (v: Value) => void
}) {
  return <SchemaField name="input" schema={schema} value={value} onChange={onChange} required root />
}

function SchemaField({
  name,
  schema,
  value,
  onChange,
  required,
  root = false,
}: {
  name: string
  schema: Schema
  value: Value
  onChange: (v: Value) => void
  required: boolean
  root?: boolean
}) {
  const type = typeOf(schema)
  const label = (
    <span>
      {schema.title ?? name}
      {required && <span className="req">*</span>}
      {type && <span className="muted small"> {type === 'enum' ? 'one of' : type}</span>}
    </span>
  )
  const help = schema.description ? <span className="help">{schema.description}</span> : null

  if (type === 'object' && schema.properties) {
    const obj = (value && typeof value === 'object' ? value : {}) as Record<string, Value>
    const fields = Object.entries(schema.properties).map(([key, prop]) => (
      <SchemaField
        key={key}
        name={key}
        schema={prop}
        value={obj[key]}
        required={(schema.required ?? []).includes(key)}
        onChange={(v) => {
          const next = { ...obj }
          if (v === undefined) delete next[key]
          else next[key] = v
          onChange(next)
        }}
      />
    ))
    if (root)
      return (
        <div className="schema-form">
          {fields.length ? fields : <div className="muted">No input fields.</div>}
        </div>
      )
    return (
      <fieldset className="fieldset">
        <legend>{label}</legend>
        {help}
        {fields}
      </fieldset>
    )
  }
  if (type === 'enum') {
    const options = schema.enum ?? []
    return (
      <label className="field">
        {label}
        <select
          name={name}
          value={String(options.indexOf(value))}
          onChange={(e) => onChange(options[Number(e.target.value)])}
        >
          {options.map((o, i) => (
            <option key={i} value={i}>
              {JSON.stringify(o)}
            </option>
          ))}
        </select>
        {help}
      </label>
    )
  }
  if (type === 'boolean')
    return (
      <label className="field field-check">
        <input
          name={name}
          type="checkbox"
          checked={value === true}
          onChange={(e) => onChange(e.target.checked)}
        />
        {label}
        {help}
      </label>
    )
  if (type === 'string' || type === 'number' || type === 'integer') {
    const numeric = type !== 'string'
    return (
      <label className="field">
        {label}
        <input
          name={name}
          type={numeric ? 'number' : 'text'}
          step={type === 'integer' ? 1 : 'any'}
          min={schema.minimum}
          max={schema.maximum}
          required={required}
          value={typeof value === 'string' || typeof value === 'number' ? String(value) : ''}
          onChange={(e) => {
            const text = e.target.value
            if (!numeric) onChange(text === '' && !required ? undefined : text)
            else onChange(text === '' ? undefined : Number(text))
          }}
        />
        {help}
      </label>
    )
  }
  return <JsonField name={name} label={label} help={help} value={value} onChange={onChange} />
}

function JsonField({
  name,
  label,
  help,
  value,
  onChange,
}: {
  name: string
  label: ReactNode
  help: ReactNode
  value: Value
  onChange: (v: Value) => void
}) {
  const [text, setText] = useState(value === undefined ? '' : JSON.stringify(value))
  const [bad, setBad] = useState(false)
  return (
    <label className="field">
      {label}
      <textarea
        name={name}
        className={`mono ${bad ? 'invalid' : ''}`}
        rows={2}
        value={text}
        onChange={(e) => {
          setText(e.target.value)
          try {
            onChange(e.target.value.trim() === '' ? undefined : JSON.parse(e.target.value))
            setBad(false)
          } catch {
            setBad(true)
          }
        }}
      />
      {help}
      {bad && <span className="help error">not valid JSON yet</span>}
    </label>
  )
}
