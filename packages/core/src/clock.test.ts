import { describe, expect, it } from 'vitest'
import { ManualClock, systemClock } from './clock'

describe('ManualClock', () => {
  it('starts at the given time and only moves when told', () => {
    expect(new ManualClock().now()).toBe(Date.UTC(2030, 0, 1))
    expect(new ManualClock(new Date(5000)).now()).toBe(5000)
    const clock = new ManualClock(1000)
    clock.advance(250)
    expect(clock.now()).toBe(1250)
    clock.set(new Date(2000))
    expect(clock.now()).toBe(2000)
    clock.set(1500)
    expect(clock.now()).toBe(2000)
  })

  it('fires due timers in order of due time, with now() at each due time', () => {
    const clock = new ManualClock(0)
    const fired: [string, number][] = []
    clock.setTimeout(() => fired.push(['c', clock.now()]), 300)
    clock.setTimeout(() => fired.push(['a', clock.now()]), 100)
    clock.setTimeout(() => fired.push(['b1', clock.now()]), 200)
    clock.setTimeout(() => fired.push(['b2', clock.now()]), 200)
    clock.setTimeout(() => fired.push(['late', clock.now()]), 1000)
    clock.advance(300)
    expect(fired).toEqual([
      ['a', 100],
      ['b1', 200],
      ['b2', 200],
      ['c', 300],
    ])
    expect(clock.pendingTimers()).toBe(1)
    clock.advance(699)
    expect(fired).toHaveLength(4)
    clock.advance(1)
    expect(fired.at(-1)).toEqual(['late', 1000])
    expect(clock.pendingTimers()).toBe(0)
  })

  it('fires timers scheduled by a timer when they fall due within the same advance', () => {
    const clock = new ManualClock(0)
    const fired: number[] = []
    clock.setTimeout(() => {
      fired.push(clock.now())
      clock.setTimeout(() => fired.push(clock.now()), 50)
      clock.setTimeout(() => fired.push(clock.now()), 500)
    }, 100)
    clock.advance(200)
    expect(fired).toEqual([100, 150])
    expect(clock.now()).toBe(200)
    expect(clock.pendingTimers()).toBe(1)
  })

  it('clearTimeout cancels a timer', () => {
    const clock = new ManualClock(0)
    const fired: string[] = []
    const handle = clock.setTimeout(() => fired.push('cleared'), 10)
    clock.setTimeout(() => fired.push('kept'), 10)
    clock.clearTimeout(handle)
    clock.advance(10)
    expect(fired).toEqual(['kept'])
  })

  it('clamps negative delays to 0', () => {
    const clock = new ManualClock(0)
    const fired: number[] = []
    clock.setTimeout(() => fired.push(clock.now()), -100)
    clock.advance(0)
    expect(fired).toEqual([0])
  })
})

describe('systemClock', () => {
  it('reads the wall clock and runs real timers', async () => {
    const before = Date.now()
    expect(systemClock.now()).toBeGreaterThanOrEqual(before)
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 1))
    let fired = false
    systemClock.clearTimeout(systemClock.setTimeout(() => (fired = true), 0))
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5))
    expect(fired).toBe(false)
  })
})
